"""Pooling a method's runs over seeds, the signal test against shuffled runs, the gap to the ceiling and the tables,
from run dictionaries written by hand (what ``runs/*.json`` holds)."""

from __future__ import annotations

import pytest

from scouter_local.benchmarking.results import MethodResult, add_gaps
from scouter_local.benchmarking.tables import benchmark_frame, format_table, signal_frame
from scouter_local.evaluation.metrics import METRICS
from scouter_local.evaluation.results import Evaluation

METRIC = "pearson_delta_top20"


def _rows(values: list[float]) -> list[dict]:
    return [
        {"condition": f"G{i}+ctrl", "subgroup": "single" if i % 2 else "combo_seen2", **{m: v for m in METRICS}}
        for i, v in enumerate(values)
    ]


def _run(method: str, seed: int, values: list[float], shuffled: list[list[float]] | None = None) -> dict:
    """One run as the benchmark writes it: the evaluation's JSON plus set, seed, timings and shuffled controls."""
    run = {
        **Evaluation.from_rows(_rows(values), method=method).to_dict(),
        "set": "s",
        "seed": seed,
        "fit_seconds": float(seed),
        "peak_rss_mib": 100.0 * seed,
    }
    if shuffled is not None:
        run["shuffled"] = [_rows(v) for v in shuffled]
    return run


@pytest.fixture(scope="module")
def results() -> list[MethodResult]:
    real = [[0.6, 0.7, 0.5, 0.8, 0.6, 0.7], [0.7, 0.6, 0.6, 0.9, 0.5, 0.8]]
    shuffled = [[v - 0.3 for v in values] for values in real]
    method = MethodResult.pool(
        [_run("ridge", s + 1, real[s], [shuffled[s], [v - 0.2 for v in shuffled[s]]]) for s in range(2)],
        signal_metric=METRIC,
    )
    base = MethodResult.pool([_run("train_mean", s, [0.2] * 6) for s in (1, 2)], signal_metric=METRIC)
    ceiling = MethodResult.pool([_run("ceiling", s, [1.2] * 6) for s in (1, 2)], signal_metric=METRIC)
    out = [method, base, ceiling]
    add_gaps(out)
    return out


def test_runs_are_pooled_over_seeds(results):
    ridge = results[0]
    assert ridge.evaluation.n == 12 and ridge.evaluation.conditions["seed"].tolist() == [1] * 6 + [2] * 6
    assert ridge.seed_means(METRIC) == pytest.approx([3.9 / 6, 4.1 / 6])
    assert len(ridge.shuffled) == 2 and ridge.shuffled[1].mean(METRIC) == pytest.approx(8 / 12 - 0.5)


def test_real_better_than_shuffled_is_signal(results):
    signal = results[0].signal["overall"]
    # the shuffled controls average 0.3 + 0.1 below the real scores, on each of the 12 conditions
    assert signal["delta"] == pytest.approx(0.4) and signal["n"] == 12
    assert signal["verdict"] == "signal" and signal["p_value"] < 0.001
    assert not results[1].signal  # no shuffled control, no test
    frame = signal_frame(results)
    assert frame[["method", "block", "verdict"]].values.tolist() == [["ridge", "overall", "signal"]]


def test_gap_to_the_ceiling(results):
    # Pearson Δ: train_mean 0.2, ceiling 1.2, ridge 8/12: (8/12 - 0.2) / (1.2 - 0.2)
    assert results[0].gap_closed["overall"][METRIC] == pytest.approx(8 / 12 - 0.2)
    assert results[1].gap_closed["overall"][METRIC] == pytest.approx(0.0) and not results[2].gap_closed


def test_summary_json_entry(results):
    entry = results[0].to_json()
    assert entry["method"] == "ridge" and entry["set"] == "s" and "conditions" not in entry
    assert entry["fit_seconds"] == [1.0, 2.0] and entry["peak_rss_mib"] == [100.0, 200.0]
    assert entry["seeds"]["seed"] == [1, 2] and entry["signal"]["overall"]["verdict"] == "signal"
    assert entry["overall"][METRIC]["mean"] == pytest.approx(8 / 12)


def test_tables(results):
    frame = benchmark_frame(results)
    ridge = frame[(frame["method"] == "ridge")].set_index("group")
    assert list(ridge.index) == ["overall", "single", "combo_seen2"] and ridge.at["single", "n"] == 6
    assert ridge.at["overall", "Pearson Δ top-20"] == pytest.approx(8 / 12)
    text = format_table(results, signal_metric=METRIC)
    ridge_line = next(line for line in text.splitlines() if line.startswith("s ") and " ridge " in line)
    assert " 0.667 " in ridge_line and "1.0-2.0" in ridge_line and ridge_line.rstrip().endswith("200")
    assert "real vs shuffled embeddings (2 row permutations" in text
