"""Metrics as DESIGN.md defines them, summaries by subgroup, report files and plots."""

from __future__ import annotations

import csv
import json

import pytest

from scouter_local.data.splits import SUBGROUPS, Split
from scouter_local.evaluation.metrics import METRICS, condition_metrics
from scouter_local.evaluation.results import write_report
from scouter_local.evaluation.scoring import evaluate_predictions
from scouter_local.predictors.training import train
from scouter_local.reporting.plots import group_grid, save_figure, top20

#: Training conditions chosen so that the test conditions cover every subgroup.
TRAIN = ["KLF1+ctrl", "MAP2K6+ctrl", "MAPK1+ctrl", "MAP2K3+SLC38A2"]
TEST = {
    "TGFBR2+ctrl": "single",
    "MAP2K3+ctrl": "single_seen",
    "BPGM+SAMD1": "combo_seen0",
    "KLF1+TGFBR2": "combo_seen1",
    "KLF1+MAP2K6": "combo_seen2",
}


@pytest.fixture(scope="module")
def results(norman, embeddings):
    split = Split(train=TRAIN, val=[], test=list(TEST))
    out = {}
    for method in ("no_change", "train_mean", "additive"):
        model = train(norman, embeddings, split=split, method=method)
        out[method] = evaluate_predictions(
            norman, dict(zip(split.test, model.predict(split.test))), model.train_conditions_, method=method
        )
    return out


def test_metrics_by_hand(norman):
    cond = "KLF1+MAP2K6"
    top = norman.de_genes[cond]
    obs, ctrl = norman.condition_mean(cond), norman.control_mean()
    pred = ctrl + 0.5 * (obs - ctrl)
    m = condition_metrics(obs, pred, ctrl, top)
    assert m["normmse"] == pytest.approx(0.25)  # half the change: (0.5 d)^2 / d^2
    assert m["pearson_delta_top20"] == pytest.approx(1.0) and m["pearson_delta_all"] == pytest.approx(1.0)
    assert m["direction_top20"] == 1.0
    flipped = condition_metrics(obs, ctrl - (obs - ctrl), ctrl, top)
    assert flipped["normmse"] == pytest.approx(4.0) and flipped["direction_top20"] == 0.0


def test_evaluate_json_shape_and_subgroups(results):
    frame = results["no_change"].conditions
    assert list(frame.columns[:2]) == ["condition", "subgroup"] and len(frame) == 5
    r = results["no_change"].to_dict()
    assert set(r) >= {"method", "n_conditions", "overall", "subgroups", "conditions"}
    assert r["n_conditions"] == 5
    assert set(r["overall"]) == set(METRICS)
    assert {c["condition"]: c["subgroup"] for c in r["conditions"]} == TEST
    assert set(r["subgroups"]) == set(SUBGROUPS)
    for g in SUBGROUPS:
        assert r["subgroups"][g]["n"] == 1 and set(r["subgroups"][g]) == {"n", *METRICS}
    # no change: NormMSE 1 by construction, its Pearson Δ is undefined (None), never NaN in JSON
    assert all(c["normmse"] == pytest.approx(1.0) for c in r["conditions"])
    assert r["overall"]["pearson_delta_top20"] == {"mean": None, "median": None}
    json.dumps(r, allow_nan=False)


def test_additive_beats_no_change_on_seen_combinations(results):
    add = results["additive"].summary.at["combo_seen2", "normmse_mean"]
    assert add < 0.5 < results["no_change"].summary.at["combo_seen2", "normmse_mean"]
    assert results["additive"].mean("normmse", "combo_seen2") == pytest.approx(add)


def test_report_files(results, tmp_path):
    json_path, csv_path = write_report(results["train_mean"], tmp_path / "eval.json")
    assert json.loads(json_path.read_text())["method"] == "train_mean"
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 5 and set(rows[0]) == {"method", "condition", "subgroup", *METRICS}


def test_plots(norman, results, tmp_path):
    preds = {"additive": norman.control_mean() + 1e-3, "train_mean": norman.condition_mean("KLF1+ctrl")}
    p1 = save_figure(top20(norman, "KLF1+MAP2K6", preds).figure, tmp_path / "top20.png")
    p2 = save_figure(group_grid(results).figure, tmp_path / "sub.png")
    for p in (p1, p2):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
