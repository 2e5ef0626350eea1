"""Detection metrics on synthetic scores: values worked out by hand or by scikit-learn, calibration of known
probabilities, DeLong's test against a hand-computed value, the copies' t-test, the verdict and the pooling over
splits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from scouter_local.evaluation.detection import (
    calibration_bins,
    copies_t_test,
    delong_test,
    detection_metrics,
    ece_floor,
    expected_calibration_error,
    precision_at,
    precision_curve,
    top_count,
)

#: Two splits worked out by hand: AUROC 5/6 and 1, AP 5/6 and 1.
Y = np.array([1, 0, 1, 0, 0, 0, 1, 0, 1])
P = np.array([0.9, 0.2, 0.4, 0.6, 0.1, 0.3, 0.8, 0.5, 0.7])
GROUPS = np.array([1] * 5 + [2] * 4)
TRAIN_RATE = np.array([0.3] * 5 + [0.4] * 4)


def _block(**options) -> dict:
    return detection_metrics(Y, P, groups=GROUPS, train_base_rate=TRAIN_RATE, label="x > 1", **options)


def test_precision_at_top_n_by_hand():
    assert precision_at(Y[:5], P[:5], 1) == 1.0 and precision_at(Y[:5], P[:5], 2) == 0.5
    assert precision_at(Y[:5], P[:5], 25) == pytest.approx(0.4)  # a list shorter than N: all of it
    assert precision_at(np.array([1, 0]), np.array([0.5, 0.5]), 1) == 1.0  # ties in row order
    assert [top_count(n) for n in (1, 9, 10, 11, 196)] == [1, 1, 1, 2, 20]
    curve = precision_curve(Y, P, GROUPS, 3)
    # split 1 ranks 1, 0, 1; split 2 ranks 1, 1, 0
    np.testing.assert_allclose(curve, [1.0, (0.5 + 1.0) / 2, (2 / 3 + 2 / 3) / 2])
    # beyond a split's length its whole list counts: split 2 stays at 2/4
    np.testing.assert_allclose(precision_curve(Y, P, GROUPS, 6)[4:], [(2 / 5 + 2 / 4) / 2, (2 / 5 + 2 / 4) / 2])


def test_block_against_hand_and_sklearn_values():
    b = _block()
    assert (b["label"], b["n"], b["positives"]) == ("x > 1", 9, 4) and b["base_rate"] == pytest.approx(4 / 9)
    assert b["auroc"] == pytest.approx((5 / 6 + 1) / 2) and b["auroc_sd"] == pytest.approx((1 / 6) / math.sqrt(2))
    assert b["auroc_pooled"] == pytest.approx(roc_auc_score(Y, P))
    assert b["average_precision"] == pytest.approx((5 / 6 + 1) / 2)
    assert b["average_precision_pooled"] == pytest.approx(average_precision_score(Y, P))
    # per split: the top 10 % is one gene (a hit in each), 25 and 50 are longer than the lists (their base rates)
    assert b["precision_at"] == pytest.approx({"10%": 1.0, "25": (2 / 5 + 2 / 4) / 2, "50": (2 / 5 + 2 / 4) / 2})
    assert b["enrichment_at_10%"] == pytest.approx((1 / 0.4 + 1 / 0.5) / 2) and b["ranked_per_split"] == 4
    assert b["brier"] == pytest.approx(brier_score_loss(Y, P))
    assert b["brier_base_rate"] == pytest.approx(np.mean((TRAIN_RATE - Y) ** 2))
    assert b["shuffled"] is None and b["verdict"] == "no evidence" and b["p_value"] is None


def test_expected_calibration_error_by_hand():
    # bin [0, 0.1): mean p 0.05, observed 0.5; bin [0.1, 0.2): mean p 0.15, observed 0; half the rows each
    y, p = np.array([0, 1, 0, 0]), np.array([0.05, 0.05, 0.15, 0.15])
    assert expected_calibration_error(y, p) == pytest.approx(0.5 * 0.45 + 0.5 * 0.15)
    observed, predicted, counts = calibration_bins(y, p)
    np.testing.assert_allclose(observed, [0.5, 0.0])
    np.testing.assert_allclose(predicted, [0.05, 0.15])
    assert counts.tolist() == [2, 2]
    assert expected_calibration_error(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.0)


def test_known_probabilities_are_calibrated_to_their_noise_floor():
    rng = np.random.default_rng(0)
    p = rng.beta(1, 12, 4000)  # about 8 % positives, as on the Replogle file
    y = rng.random(len(p)) < p
    floor = ece_floor(p)
    assert 0 < floor < 0.02
    assert expected_calibration_error(y, p) < 2 * floor
    # the same ranking made over-confident: far above the floor
    assert expected_calibration_error(y, np.sqrt(p)) > 10 * floor


def test_delong_against_a_hand_computed_value():
    # placements of a: positives (1, 2/3), negatives (1/2, 1, 1): AUROC 5/6; of b: (1/3, 1) and (1/2, 1/2, 1): 2/3.
    # differences: positives (2/3, -1/3), variance 1/2, /2 = 1/4; negatives (0, 1/2, 0), variance 1/12, /3 = 1/36
    y = np.array([1, 1, 0, 0, 0])
    a = np.array([0.9, 0.4, 0.5, 0.2, 0.1])
    b = np.array([0.3, 0.8, 0.6, 0.7, 0.1])
    test = delong_test(y, a, [b], np.zeros(5))
    assert test["delta"] == pytest.approx(1 / 6) and test["z"] == pytest.approx((1 / 6) / math.sqrt(1 / 4 + 1 / 36))
    assert test["p_value"] == pytest.approx(stats.norm.sf(1 / math.sqrt(10)))
    # two independent splits with the same data: the same difference, half the variance of the mean
    twice = delong_test(np.tile(y, 2), np.tile(a, 2), [np.tile(b, 2)], np.repeat([1, 2], 5))
    assert twice["delta"] == pytest.approx(1 / 6) and twice["z"] == pytest.approx(1 / math.sqrt(5))
    # several comparators: their mean placements (b twice is b); a split with one class is left out
    assert delong_test(y, a, [b, b], np.zeros(5))["z"] == pytest.approx(test["z"])
    assert delong_test(np.zeros(5), a, [b], np.zeros(5)) == {"delta": None, "z": None, "p_value": None}


def test_copies_t_test():
    copies = [0.5, 0.52, 0.48, 0.5, 0.5]
    sd = math.sqrt(2 * 0.02**2 / 4)
    t = (0.7 - 0.5) / (sd * math.sqrt(1 + 1 / 5))
    got = copies_t_test(0.7, copies)
    assert got["t"] == pytest.approx(t) and got["p_value"] == pytest.approx(stats.t.sf(t, 4))
    assert copies_t_test(0.49, copies)["p_value"] > 0.5
    assert copies_t_test(0.7, [0.5]) == {"t": None, "p_value": None}


def _screen(rng: np.random.Generator, signal: float, n_splits: int = 5, n: int = 200):
    """Labels at a 10 % base rate and scores that carry ``signal`` of them, per split."""
    y = (rng.random(n_splits * n) < 0.1).astype(int)
    groups = np.repeat(np.arange(n_splits), n)
    score = np.clip(0.1 + signal * (y - 0.1) + rng.normal(0, 0.05, len(y)), 0.001, 0.999)
    return y, score, groups


def test_verdict_real_against_shuffled_copies():
    rng = np.random.default_rng(1)
    y, real, groups = _screen(rng, 0.15)
    copies = [_screen(rng, 0.0)[1] for _ in range(5)]
    rate = np.full(len(y), 0.1)
    b = detection_metrics(y, real, groups=groups, train_base_rate=rate, label="x", shuffled=copies)
    assert b["auroc"] > 0.9 and 0.4 < b["shuffled"]["auroc"] < 0.6 and len(b["shuffled"]["aurocs"]) == 5
    assert b["verdict"] == "signal" and b["p_value"] < 0.01
    assert b["p_value"] == max(b["tests"].values())
    # the luckiest of six null copies against the other five: above their mean, but no evidence
    nulls = [*copies, _screen(rng, 0.0)[1]]
    best = max(range(6), key=lambda k: roc_auc_score(y, nulls[k]))
    others = [c for k, c in enumerate(nulls) if k != best]
    null = detection_metrics(y, nulls[best], groups=groups, train_base_rate=rate, label="x", shuffled=others)
    assert null["auroc"] > null["shuffled"]["auroc"]
    assert null["verdict"] == "no evidence" and null["p_value"] > 0.05
    assert detection_metrics(y, real, groups=groups, train_base_rate=rate, label="x")["verdict"] == "no evidence"


def test_auroc_is_the_mean_over_splits_not_the_pooled_value():
    """A constant score per split equal to its training base rate, which is anti-correlated with its test base
    rate (as in seeded splits of one screen): no ranking within a split (AUROC 0.5), pooled AUROC far below."""
    y = np.array([1] * 8 + [0] * 12 + [1] * 2 + [0] * 18)
    groups = np.repeat([1, 2], 20)
    rate = np.where(groups == 1, 0.1, 0.4)
    b = detection_metrics(y, rate, groups=groups, train_base_rate=rate, label="x")
    # pooled: positives above negatives 2 x 12, tied 8 x 12 + 2 x 18 (count 1/2), of 10 x 30 pairs
    assert b["auroc"] == pytest.approx(0.5) and b["auroc_pooled"] == pytest.approx((24 + 0.5 * 132) / 300)
    assert b["brier"] == pytest.approx(b["brier_base_rate"])
