"""Effect detection in the benchmark: one seed's run on the synthetic factor screen (real vectors against shuffled
ones), pooling of hand-written runs into the ``detection`` blocks, the printed block, the plots, and on the real
Replogle subset the block in ``summary.json`` with sane values."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from scouter_local.benchmarking.detection import DETECTION, DetectionResult, run_detection
from scouter_local.benchmarking.results import MethodResult
from scouter_local.benchmarking.tables import detection_frame, detection_lines, format_table
from scouter_local.data.effect import EffectLabel
from scouter_local.evaluation.metrics import METRICS
from scouter_local.evaluation.results import Evaluation
from tests.benchmarking.conftest import ABOVE, KEY


def _factor_label(screen) -> EffectLabel:
    """The factor screen's targets labelled by their true mean change (linear in the factors the informative
    vectors carry): above the median is an effect."""
    mean = pd.Series({c: float(np.mean(t)) for c, t in screen.truth.items()})
    table = pd.DataFrame({"statistic": mean, "strength": mean, "label": mean > mean.median()})
    table.index.name = "condition"
    return EffectLabel("mean > median", "threshold", table)


@pytest.fixture(scope="module")
def factor_runs(screen) -> list[dict]:
    label = _factor_label(screen)
    return [
        run_detection(screen.data, screen.informative, screen.split, label, seed=s, shuffles=3, stacking="never")
        for s in (1, 2)
    ]


def test_one_seed_fits_real_and_shuffled_vectors(factor_runs, screen):
    run = factor_runs[0]
    assert run["method"] == DETECTION and run["label"] == "mean > median" and run["seed"] == 1
    assert [c["condition"] for c in run["conditions"]] == screen.split.test
    assert 0.3 < run["train_base_rate"] < 0.7 and run["fit_seconds"] > 0
    row = run["conditions"][0]
    assert set(row) == {"condition", "label", "p_effect", "strength", "well_studied", "shuffled"}
    assert len(row["shuffled"]) == 3 and np.isnan(row["well_studied"])  # no corpus: no well-studied features
    json.dumps(run)


def test_real_vectors_detect_and_shuffled_ones_do_not(factor_runs):
    pooled = DetectionResult.pool(factor_runs)
    block = pooled.model
    assert block["n"] == 80 and block["auroc"] > 0.85 and block["average_precision"] > 0.8
    assert abs(block["shuffled"]["auroc"] - 0.5) < 0.15 and len(block["shuffled"]["aurocs"]) == 3
    assert block["verdict"] == "signal" and block["p_value"] < 0.05
    assert pooled.well_studied is None and "vs_well_studied" not in block


def _entry(seed: int, rows: list[tuple[bool, float, float, list[float]]], **extra) -> dict:
    return {
        "method": DETECTION,
        "set": "s",
        "seed": seed,
        "label": "x > 1",
        "train_base_rate": 0.25,
        "fit_seconds": 1.0,
        "peak_rss_mib": 10.0,
        "conditions": [
            {"condition": f"G{i}+ctrl", "label": y, "p_effect": p, "strength": 0.0, "well_studied": w, "shuffled": s}
            for i, (y, p, w, s) in enumerate(rows)
        ],
        **extra,
    }


#: Two seeds of three test genes: the effect model ranks every positive first, the baseline one of the four pairs.
RUNS = [
    _entry(1, [(True, 0.6, 0.2, [0.3, 0.2]), (False, 0.1, 0.3, [0.2, 0.3]), (False, 0.2, 0.1, [0.1, 0.1])]),
    _entry(2, [(True, 0.7, 0.4, [0.2, 0.1]), (False, 0.3, 0.5, [0.3, 0.3]), (True, 0.5, 0.2, [0.1, 0.2])]),
]


@pytest.fixture(scope="module")
def pooled() -> DetectionResult:
    return DetectionResult.pool(RUNS)


def test_runs_are_pooled_over_seeds(pooled):
    assert len(pooled.frame) == 6 and pooled.shuffled.shape == (2, 6) and pooled.seeds == [1, 2]
    m, w = pooled.model, pooled.well_studied
    assert (m["n"], m["positives"], m["auroc"], m["label"]) == (6, 3, 1.0, "x > 1")
    # the baseline: split 1 ranks its positive between its negatives (AUROC 1/2), split 2 both positives below its
    # negative (0)
    assert w["auroc"] == pytest.approx(0.25) and w["shuffled"] is None and w["verdict"] is None
    assert m["vs_well_studied"]["delta_auroc"] == pytest.approx(0.75)
    assert m["brier_base_rate"] == pytest.approx(np.mean((0.25 - np.array([1, 0, 0, 1, 0, 1])) ** 2))
    curves = pooled.precision_curves()
    assert set(curves) == {"effect model", "well_studied"} and len(curves["effect model"]) == 3
    assert pooled.to_json() == {
        "set": "s",
        "method": "well_studied",
        "n_conditions": 3,
        "detection": w,
        "seeds": [1, 2],
    }


def test_a_stacked_model_is_shown_beside_the_embedding_alone():
    """Where a seed's model kept the well-studied features, the embedding alone is pooled too, against its own
    shuffled copies (a seed whose model did not stack counts its model's probabilities for it)."""
    stacked = [dict(run, conditions=[dict(c) for c in run["conditions"]]) for run in RUNS]
    for c, alone in zip(stacked[0]["conditions"], (0.2, 0.4, 0.1)):  # the embedding alone ranks the positive second
        c.update(p_embedding=alone, shuffled_embedding=[0.5, 0.5])
    result = DetectionResult.pool(stacked)
    alone = result.model["embedding_only"]
    # split 1: the positive (0.2) above one of its two negatives (0.4, 0.1); split 2 keeps its model's 1.0. Copies:
    # split 1's are constant (0.5), split 2's are its model's, which rank both positives below the negative (0)
    assert alone["auroc"] == pytest.approx((0.5 + 1.0) / 2) and alone["shuffled"]["auroc"] == pytest.approx(0.25)
    assert result.model["auroc"] == 1.0 and "embedding_only" not in DetectionResult.pool(RUNS).model
    lines = detection_lines([result])
    assert any(line.startswith("s ") and "embedding only" in line for line in lines)
    assert any("whose shuffled copies test whether it carries any signal at all" in line for line in lines)
    assert detection_frame([result])["model"].tolist() == ["effect model", "embedding only", "well_studied"]


def test_a_refused_model_leaves_a_note():
    note = "only 3 of 12 labelled genes have an effect and 9 have none; the effect model needs at least 5 of each"
    refused = DetectionResult.pool([{"method": DETECTION, "set": "s", "seed": 1, "label": "x > 1", "note": note}])
    assert refused.model is None and refused.to_json()["note"] == note and refused.to_json()["detection"] is None
    assert detection_lines([refused]) == [f"no effect detection on set s: {note}"]


def _method(name: str) -> MethodResult:
    rows = [{"condition": f"G{i}+ctrl", "subgroup": "single", **{m: 0.5 for m in METRICS}} for i in range(3)]
    run = {**Evaluation.from_rows(rows, method=name).to_dict(), "set": "s", "seed": 1}
    return MethodResult.pool([{**run, "fit_seconds": 1.0, "peak_rss_mib": 5.0}], signal_metric="pearson_delta_top20")


def test_table_block_and_json(pooled):
    results = [_method("ridge")]
    before = format_table(results, signal_metric="pearson_delta_top20")
    text = format_table(results, signal_metric="pearson_delta_top20", detection=[pooled])
    assert text.startswith(before + "\n\neffect detection: x > 1 on the test single genes (2 splits")
    block = text[len(before) :].splitlines()
    model = next(line for line in block if line.startswith("s ") and "effect model" in line)
    assert model.split()[3:6] == ["6", "3", "1.000"] and model.endswith("no evidence")  # 2 copies: p > 0.05
    assert any(line.startswith("s ") and "well_studied" in line for line in block)
    assert any(line.startswith("knowledge over well-studied") and "s 0.750 (p " in line for line in block)
    frame = detection_frame([pooled])
    assert frame["model"].tolist() == ["effect model", "well_studied"] and frame.at[0, "AUROC"] == 1.0
    assert frame.at[0, "AP × base rate"] == "2.0×" and pd.isna(frame.at[1, "shuffled AUROC"])
    results[0].detection = pooled.model
    assert results[0].to_json()["detection"]["auroc"] == 1.0
    assert "detection" not in _method("ridge").to_json()


def test_sets_are_ranked_by_detection(pooled):
    """A set whose effect model ranks worse is listed after a better one, whatever their order."""
    swapped = [
        {
            **run,
            "set": "worse",
            "conditions": [
                {**c, "p_effect": c["well_studied"], "well_studied": c["p_effect"]} for c in run["conditions"]
            ],
        }
        for run in RUNS
    ]
    worse = DetectionResult.pool(swapped)
    assert worse.model["auroc"] < pooled.model["auroc"]
    lines = detection_lines([worse, pooled])
    models = [line.split()[0] for line in lines if "effect model" in line and not line.startswith("effect")]
    assert models == ["s", "worse"]


def test_comparison_table_ranks_sets_on_detection_too(pooled):
    from scouter_local.benchmarking.tables import comparison_table

    plain = comparison_table([_method("ridge")], {})
    assert not any(c.startswith("effect ") for c in plain.columns)  # no label, no columns: output unchanged
    labelled = _method("ridge")
    labelled.detection = pooled.model
    frame = comparison_table([labelled, _method("train_mean")], {})
    assert frame.loc[0, ["effect AUROC", "effect AP", "effect p"]].tolist() == [
        1.0,
        pooled.model["average_precision"],
        pooled.model["p_value"],
    ]
    assert frame.loc[0, "effect shuffled AUROC"] == pooled.model["shuffled"]["auroc"]
    assert pd.isna(frame.loc[1, "effect AUROC"])


def test_plots(pooled, tmp_path):
    from scouter_local.benchmarking.detection import detection_figure
    from scouter_local.reporting.plots import precision_at_n, reliability_diagram, save_figure

    path = detection_figure([pooled], tmp_path / "detection.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20000
    ax = precision_at_n(pooled.precision_curves(), base_rate=0.5, baseline="well_studied")
    assert [line.get_label() for line in ax.get_lines()] == ["effect model", "well_studied", "base rate (0.500)"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), pooled.precision_curves()["effect model"])
    save_figure(ax.figure, tmp_path / "curve.png")
    ax = reliability_diagram({"m": (pooled.frame["label"], pooled.frame["p_effect"])})
    assert [line.get_label() for line in ax.get_lines()] == ["m", "perfect calibration"]
    save_figure(ax.figure, tmp_path / "reliability.png")


# ------------------------------------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def replogle_bench(replogle_subset, screen_db, tmp_path_factory):
    """The benchmark on the Replogle subset with the strong label: train_mean, 2 seeds, 3 copies; the default
    effect model, and the embedding alone (no stacking: its copies know nothing)."""
    from scouter_local.benchmarking.benchmark import run_benchmark
    from scouter_local.data.options import DataOptions
    from scouter_local.evaluation.strong import StrongTargets

    options = DataOptions(condition_key="target_ensembl", single_format="bare")
    benches = {}
    for name, effect_options in (("default", None), ("embedding", {"stacking": "never"})):
        out = tmp_path_factory.mktemp(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bench = run_benchmark(
                replogle_subset,
                options,
                db=screen_db,
                set_names=["minilm"],
                methods=["train_mean"],
                seeds=[1, 2],
                out=out,
                strong=StrongTargets(KEY, ABOVE),
                shuffles=3,
                effect_options=effect_options,
            )
        benches[name] = (out, bench)
    return benches


def test_detection_block_in_summary_json(replogle_bench):
    out, bench = replogle_bench["default"]
    detection = bench.detection[0]
    summary = {r["method"]: r for r in json.loads((out / "summary.json").read_text())}
    assert set(summary) == {"train_mean", "well_studied"}
    assert summary["well_studied"]["detection"] == detection.well_studied
    assert json.loads((out / "runs" / "minilm_detection_seed2.json").read_text())["seed"] == 2
    block = summary["train_mean"]["detection"]
    # every test target is a labelled single gene; its label is the strong group's rule
    profiles = summary["train_mean"]
    assert block["label"] == f"{KEY} > {ABOVE:g}" and block["n"] == profiles["n_conditions"]
    assert block["positives"] == profiles["subgroups"]["strong"]["n"] > 0
    for b in (block, summary["well_studied"]["detection"]):
        assert 0.5 < b["auroc"] <= 1 and 0 < b["brier"] < b["brier_base_rate"] and 0 <= b["ece"] < 0.5
        assert set(b["precision_at"]) == {"10%", "25", "50"}
    assert block["verdict"] in ("signal", "no evidence") and 0 < block["p_value"] <= 1
    assert "effect detection: signal_to_noise > 1.1" in bench.table
    assert (out / "detection_minilm.png").stat().st_size > 20000


def test_shuffled_vectors_detect_near_chance(replogle_bench):
    block = replogle_bench["embedding"][1].detection[0].model
    assert block["auroc"] > 0.6 and abs(block["shuffled"]["auroc"] - 0.5) < 0.15
    assert block["shuffled"]["auroc"] < block["auroc"]
