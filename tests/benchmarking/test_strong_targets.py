"""Issue #5: ``benchmark --strong-key signal_to_noise --strong-above 1.1`` on the real Replogle K562 file adds the
subgroup ``strong`` (targets with a detectable effect) to the table, JSON, CSV and plots, with the right count."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
from click.testing import CliRunner

from tests.benchmarking.conftest import ABOVE, KEY

OPTS = ("--condition-key", "target_ensembl", "--single-format", "bare")
METHODS = "train_mean,ridge"
SEEDS = (1, 2)


def bench_args(data, db, methods: str, seeds: str, out) -> list[str]:
    """``benchmark`` of ``methods`` on set ``minilm`` of ``db`` over ``seeds``, the Replogle layout, into ``out``."""
    inputs = ["--data", str(data), "--db", str(db), "--set", "minilm"]
    return ["benchmark", *inputs, "--methods", methods, "--seeds", seeds, "--out", str(out), *OPTS]


@pytest.fixture(scope="session")
def bench(replogle_subset, screen_db, tmp_path_factory) -> tuple[Path, str]:
    """``scouter-local benchmark`` with the strong subgroup: 2 seeds, light methods."""
    from scouter_local.cli import main

    out = tmp_path_factory.mktemp("bench") / "bench"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = CliRunner().invoke(
            main,
            bench_args(replogle_subset, screen_db, METHODS, ",".join(map(str, SEEDS)), out)
            + ["--strong-key", KEY, "--strong-above", str(ABOVE)],
        )
    assert r.exit_code == 0, r.output
    return out, r.output


@pytest.fixture(scope="session")
def file_strength(replogle_subset, screen_db) -> dict[str, float]:
    """Condition (current symbol, ``A+ctrl``) → signal_to_noise, worked out here from the file and the resolver."""
    from gene_corpus.corpus import Corpus

    obs = ad.read_h5ad(replogle_subset, backed="r").obs
    ids = obs["target_ensembl"].astype(str).tolist()
    with Corpus.open(screen_db, read_only=True) as corpus:
        symbols = [r.symbol for r in corpus.resolve(ids)]
    return {f"{s}+ctrl": float(v) for s, v in zip(symbols, obs[KEY]) if s}


def _profile_rows(out: Path) -> dict[str, dict]:
    """Method → its ``summary.json`` row (the well-studied baseline's row, which carries only ``detection``, left
    out)."""
    return {s["method"]: s for s in json.loads((out / "summary.json").read_text()) if s["method"] != "well_studied"}


def test_strong_subgroup_counts_the_strong_test_targets(bench, file_strength):
    out, _ = bench
    summaries = _profile_rows(out)
    assert set(summaries) == set(METHODS.split(","))
    expected_total = 0
    for seed in SEEDS:
        runs = [json.loads((out / "runs" / f"minilm_{m}_seed{seed}.json").read_text()) for m in METHODS.split(",")]
        test = runs[0]["split"]["test"]
        expected = sum(file_strength[c] > ABOVE for c in test)
        assert 0 < expected < len(test), "the subset must put strong and weak targets in every test split"
        expected_total += expected
        for run in runs:
            assert run["strong_rule"] == {"key": KEY, "above": ABOVE}
            assert run["subgroups"]["strong"]["n"] == expected
            for row in run["conditions"]:
                assert row["strong_value"] == pytest.approx(file_strength[row["condition"]])
                assert row["strong"] == (file_strength[row["condition"]] > ABOVE)
            strong_rows = [r for r in run["conditions"] if r["strong"]]
            mean = np.mean([r["pearson_delta_top20"] for r in strong_rows if r["pearson_delta_top20"] is not None])
            assert run["subgroups"]["strong"]["pearson_delta_top20"]["mean"] == pytest.approx(mean)
    for s in summaries.values():
        assert s["subgroups"]["strong"]["n"] == expected_total
        assert s["n_conditions"] == s["subgroups"]["single"]["n"]  # existing keys unchanged
        assert s["subgroups"]["strong"]["n"] < s["n_conditions"]


def test_table_csv_and_plot_show_the_strong_subgroup(bench):
    out, output = bench
    summaries = _profile_rows(out)
    block = output[output.index("strong targets: mean obs['signal_to_noise'] > 1.1") :]
    for method, s in summaries.items():
        line = next(line for line in block.splitlines() if line.split()[:2] == ["minilm", method])
        assert int(line.split()[2]) == s["subgroups"]["strong"]["n"]
        assert float(line.split()[5]) == pytest.approx(
            s["subgroups"]["strong"]["pearson_delta_top20"]["mean"], abs=5e-4
        )
    assert (out / "table.txt").read_text().strip() in output
    assert "scouter-learn" not in output  # the Norman reference line belongs under Norman tables only
    with open(out / "summary.csv") as fh:
        groups = {(r["method"], r["group"]): int(r["n"]) for r in csv.DictReader(fh)}
    assert {m: groups[(m, "strong")] for m in summaries} == {
        m: s["subgroups"]["strong"]["n"] for m, s in summaries.items()
    }
    with open(out / "conditions.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[-2:] == ["strong", "strong_value"]
    assert sum(r["strong"] == "True" for r in rows) == sum(s["subgroups"]["strong"]["n"] for s in summaries.values())
    for plot in ("subgroups_minilm.png", "subgroups_minilm_pearson_delta_top20.png"):
        assert (out / plot).stat().st_size > 0


def test_strong_options_are_checked_before_any_run(replogle_subset, screen_db, tmp_path):
    from scouter_local.cli import main

    base = bench_args(replogle_subset, screen_db, "train_mean", "1", tmp_path / "b")
    for extra, message in (
        (["--strong-key", "snr", "--strong-above", "1.1"], "--strong-key 'snr' not in obs"),
        (["--strong-key", "target_symbol", "--strong-above", "1.1"], "is not numeric"),
        (["--strong-key", KEY], "--strong-key and --strong-above go together"),
    ):
        r = CliRunner().invoke(main, base + extra)
        assert r.exit_code == 1, r.output
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.output
    assert not (tmp_path / "b" / "runs").exists() or not any((tmp_path / "b" / "runs").iterdir())
