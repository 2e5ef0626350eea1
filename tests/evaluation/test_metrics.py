"""Metrics against values worked out by hand, the Evaluation table (summaries, JSON round trip, pooling, report
files) and scoring of predictions on the synthetic screen."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pandas as pd
import pytest

from scouter_local.evaluation.metrics import METRICS, condition_metrics
from scouter_local.evaluation.results import Evaluation, write_report
from scouter_local.evaluation.scoring import evaluate_predictions

OBSERVED = np.array([2.0, 0.0, 1.0, 5.0])
CONTROL = np.ones(4)
PREDICTED = np.array([1.5, 1.0, 1.0, 3.0])
TOP = np.array([0, 1, 3])


def test_metrics_by_hand():
    m = condition_metrics(OBSERVED, PREDICTED, CONTROL, TOP)
    # on the top genes: observed change (1, -1, 4), predicted change (0.5, 0, 2)
    assert m["normmse"] == pytest.approx((0.5**2 + 1**2 + 2**2) / (1 + 1 + 16))
    # centred: (-1/3, -7/3, 8/3) and (-1/3, -5/6, 7/6)
    assert m["pearson_delta_top20"] == pytest.approx((93 / 18) / math.sqrt(114 / 9 * 78 / 36))
    # all genes: changes (1, -1, 0, 4) and (0.5, 0, 0, 2), centred (0, -2, -1, 3) and (-0.125, -0.625, -0.625, 1.375)
    assert m["pearson_delta_all"] == pytest.approx(6 / math.sqrt(14 * 2.6875))
    assert m["direction_top20"] == pytest.approx(2 / 3)  # the predicted 0 has not the observed sign of -1


def test_no_change_prediction():
    m = condition_metrics(OBSERVED, CONTROL, CONTROL, TOP)
    assert m["normmse"] == 1.0 and math.isnan(m["pearson_delta_top20"]) and m["direction_top20"] == 0.0


def test_centred_pearson_by_hand():
    reference = np.array([1.0, 1.0, 2.0, 2.0])
    m = condition_metrics(OBSERVED, PREDICTED, CONTROL, TOP, train_mean_profile=reference)
    # on the top genes: observed - reference (1, -1, 3), predicted - reference (0.5, 0, 1); centred (0, -2, 2) and
    # (0, -0.5, 0.5): perfectly correlated although Pearson Δ is not
    assert m["pearson_centred_top20"] == pytest.approx(1.0) and m["pearson_delta_top20"] < 0.99
    assert math.isnan(condition_metrics(OBSERVED, PREDICTED, CONTROL, TOP)["pearson_centred_top20"])


def test_centred_pearson_scores_train_mean_zero_and_the_truth_one():
    reference = np.array([1.5, 0.5, 1.0, 4.0])

    def centred(predicted, observed=OBSERVED):
        return condition_metrics(observed, predicted, CONTROL, TOP, train_mean_profile=reference)[
            "pearson_centred_top20"
        ]

    assert centred(reference) == 0.0  # the training mean itself: no departure from the shared response
    assert centred(reference + 0.3) == 0.0  # a flat departure says nothing about which genes move
    assert centred(OBSERVED) == pytest.approx(1.0) and centred(2 * OBSERVED - reference) == pytest.approx(1.0)
    assert centred(2 * reference - OBSERVED) == pytest.approx(-1.0)
    assert math.isnan(centred(PREDICTED, observed=reference + 1.0))  # a flat observed side: undefined


def _rows(values: list[float], subgroups: list[str]) -> list[dict]:
    return [
        {"condition": f"G{i}+ctrl", "subgroup": g, **{m: v for m in METRICS}}
        for i, (v, g) in enumerate(zip(values, subgroups))
    ]


def test_summary_groups_and_json_round_trip(tmp_path):
    result = Evaluation.from_rows(
        _rows([0.2, 0.4, float("nan"), 1.0], ["single", "single", "combo_seen2", "combo_seen2"]),
        method="m",
        info={"model": "x"},
    )
    assert result.groups == ["overall", "single", "combo_seen2"] and result.n == 4
    assert result.summary.at["single", "normmse_mean"] == pytest.approx(0.3)
    assert result.mean("normmse") == pytest.approx(1.6 / 3)  # NaN left out
    assert result.mean("normmse", "combo_seen0") is None
    d = result.to_dict()
    assert d["subgroups"]["combo_seen2"] == {"n": 2, **{m: {"mean": 1.0, "median": 1.0} for m in METRICS}}
    assert d["conditions"][2]["normmse"] is None and d["model"] == "x"
    json.dumps(d, allow_nan=False)
    again = Evaluation.from_dict(json.loads(json.dumps(d)))
    pd.testing.assert_frame_equal(again.conditions, result.conditions)
    assert again.info == {"model": "x"}
    json_path, csv_path = write_report(result, tmp_path / "eval.json")
    assert json.loads(json_path.read_text()) == d
    assert [r["condition"] for r in csv.DictReader(csv_path.open())] == ["G0+ctrl", "G1+ctrl", "G2+ctrl", "G3+ctrl"]


def test_pooled_seeds():
    a = Evaluation.from_rows(_rows([0.1, 0.3], ["single", "single"]), method="m")
    b = Evaluation.from_rows(_rows([0.5], ["single"]), method="m")
    pooled = Evaluation.pooled([a, b], seeds=[1, 2])
    assert pooled.conditions["seed"].tolist() == [1, 1, 2] and pooled.mean("normmse") == pytest.approx(0.3)


def test_scoring_observed_means_is_perfect(linked):
    train = ["SYN1+ctrl", "SYN2+ctrl"]
    test = ["SYN1+SYN2", "SYN4+ctrl"]
    perfect = {c: linked.condition_mean(c) for c in test}
    result = evaluate_predictions(linked, perfect, train, method="oracle")
    frame = result.conditions.set_index("condition")
    assert frame.loc["SYN1+SYN2", "subgroup"] == "combo_seen2" and frame.loc["SYN4+ctrl", "subgroup"] == "single"
    np.testing.assert_allclose(frame["normmse"], 0.0, atol=1e-10)
    np.testing.assert_allclose(frame[["pearson_delta_top20", "pearson_delta_all", "direction_top20"]], 1.0)
    assert frame["pearson_centred_top20"].isna().all()  # no training mean given
    flat = evaluate_predictions(linked, {c: linked.control_mean() for c in test}, train, method="no_change")
    np.testing.assert_allclose(flat.conditions["normmse"], 1.0)
    reference = linked.subset(train).mean_profile()
    centred = evaluate_predictions(linked, perfect, train, method="oracle", train_mean_profile=reference)
    np.testing.assert_allclose(centred.conditions["pearson_centred_top20"], 1.0)
    mean = evaluate_predictions(
        linked, {c: reference for c in test}, train, method="train_mean", train_mean_profile=reference
    )
    assert (mean.conditions["pearson_centred_top20"] == 0.0).all()
    assert mean.to_dict()["overall"]["pearson_centred_top20"] == {"mean": 0.0, "median": 0.0}


def test_rows_without_a_later_metric_read_as_undefined():
    """Runs written before ``pearson_centred_top20`` existed still load: the metric is undefined (None in JSON)."""
    rows = [{k: v for k, v in r.items() if k != "pearson_centred_top20"} for r in _rows([0.5, 0.7], ["single"] * 2)]
    old = Evaluation.from_rows(rows, method="m")
    assert old.mean("normmse") == pytest.approx(0.6) and old.mean("pearson_centred_top20") is None
    assert old.to_dict()["overall"]["pearson_centred_top20"] == {"mean": None, "median": None}
