"""Detection metrics: how well a probability of a detectable effect ranks and calibrates the test conditions of
several seeded splits, beside the base rate and the same model refitted on row-shuffled embeddings.

Inputs are aligned arrays with one row per (split, test condition): the 0/1 label, the predicted probability, the
split (``groups``) and that split's training base rate. Pooling over splits follows what a user meets:

- ``auroc`` and ``average_precision`` are the mean over splits, the pooled values beside them (pooling the
  test rows of several models mixes their base rates: a constant score equal to each split's training base rate,
  which is anti-correlated with its test base rate, scores pooled AUROC below 0.5);
- ``precision_at`` the top 10 % and the top N of *each split's* ranking (a user ranks one list), averaged;
- ``brier`` and ``ece`` on the pooled rows (calibration across splits is what a user meets), beside the Brier
  score of predicting each split's training base rate and the ECE a perfectly calibrated model with the same
  probabilities would show (its noise floor).

The real-vs-shuffled test takes the larger of two one-sided p-values: DeLong's test of the AUROC difference
between the real model and the mean of its shuffled copies (paired on the conditions, splits independent), and a
t-test of the real per-split-mean AUROC against the K copies' (each copy a draw from the null, so it also carries
the variation of *which* permutation a copy got, which DeLong's test conditions away).

>>> y, p = np.array([1, 0, 1, 0, 0]), np.array([0.9, 0.2, 0.4, 0.6, 0.1])
>>> precision_at(y, p, 2), float(roc_auc_score(y, p))
(0.5, 0.8333333333333334)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from scouter_local.evaluation.metrics import none_if_nan, seed_sd
from scouter_local.evaluation.signal import NO_EVIDENCE, SIGNAL

#: Sizes N of the top lists whose precision is reported (per split), beside the top :data:`TOP_FRACTION`.
TOP_N = (25, 50)

#: Share of each split's ranking whose precision and enrichment over the base rate are reported.
TOP_FRACTION = 0.1

#: Equal-width bins of the expected calibration error (those of ``calibration_curve(strategy="uniform")``).
N_BINS = 10

#: Simulations of the ECE noise floor.
N_FLOOR_SIMULATIONS = 200


def precision_at(y: np.ndarray, score: np.ndarray, k: int) -> float:
    """Share of positives among the ``k`` highest scores (all rows when fewer; ties in row order)."""
    k = min(int(k), len(y))
    if k <= 0:
        return float("nan")
    return float(np.mean(np.asarray(y)[np.argsort(-np.asarray(score, dtype=float), kind="stable")[:k]]))


def top_count(n: int, fraction: float = TOP_FRACTION) -> int:
    """Rows in the top ``fraction`` of a ranking of ``n`` (rounded up, at least 1)."""
    return max(1, math.ceil(fraction * n - 1e-9))


def calibration_bins(
    y: np.ndarray, p: np.ndarray, *, n_bins: int = N_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``calibration_curve``'s ``uniform`` bins (``n_bins`` equal widths on [0, 1]) with their sizes.

    Returns
    -------
    ``(observed, predicted, counts)`` of the non-empty bins: share of positives, mean probability, rows.
    """
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    observed, predicted = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], p), minlength=n_bins)
    return observed, predicted, counts[counts > 0]


def expected_calibration_error(y: np.ndarray, p: np.ndarray, *, n_bins: int = N_BINS) -> float:
    """Mean over rows of |observed share of positives − mean probability| in each row's bin
    (:func:`calibration_bins`: each non-empty bin weighs by its share of the rows)."""
    observed, predicted, counts = calibration_bins(y, p, n_bins=n_bins)
    return float(np.sum(counts * np.abs(observed - predicted)) / counts.sum())


def ece_floor(p: np.ndarray, *, n_bins: int = N_BINS, n_simulations: int = N_FLOOR_SIMULATIONS, seed: int = 0) -> float:
    """Mean ECE of labels drawn from ``p`` itself: what a perfectly calibrated model with these probabilities
    shows from sampling noise alone (seeded simulation)."""
    p = np.asarray(p, dtype=float)
    rng = np.random.default_rng(seed)
    return float(
        np.mean([expected_calibration_error(rng.random(len(p)) < p, p, n_bins=n_bins) for _ in range(n_simulations)])
    )


def placements(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's placement values (Sun & Xu's midrank form).

    Returns
    -------
    ``(positives, negatives)``: for each positive the share of negatives scored below it, for each negative the
    share of positives scored above it (ties count ½). The mean of either is the AUROC.
    """
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, dtype=float)
    m, n = int(y.sum()), int((~y).sum())
    ranks = stats.rankdata(score)
    positives = (ranks[y] - stats.rankdata(score[y])) / n
    negatives = 1.0 - (ranks[~y] - stats.rankdata(score[~y])) / m
    return positives, negatives


def _two_classes(y: np.ndarray) -> bool:
    return 0 < int(np.sum(y)) < len(y)


def delong_test(y: np.ndarray, score: np.ndarray, comparators: Sequence[np.ndarray], groups: np.ndarray) -> dict:
    """One-sided DeLong test that ``score`` ranks the positives higher (AUROC) than ``comparators`` do.

    Within each split (``groups``): each condition's placement value under ``score`` minus its mean placement
    value under the comparators (one comparator: DeLong's paired test of two AUROCs; several, e.g. the shuffled
    copies: their mean AUROC); the AUROC difference is the mean difference over the positives, its variance the
    sum of the variances of the mean difference over positives and over negatives. Splits are independent, so
    the mean difference over G splits has variance Σ var / G². Splits with one class only are left out.

    Parameters
    ----------
    y, score, groups
        ``(n_rows,)`` aligned: 0/1 labels, the score tested, the split of each row.
    comparators
        ``(n_rows,)`` scores of the same rows by the other model(s).

    Returns
    -------
    ``{"delta": mean AUROC difference, "z", "p_value"}`` (``None`` values where no split has both classes).
    """
    y, groups = np.asarray(y).astype(bool), np.asarray(groups)
    deltas, variances = [], []
    for g in np.unique(groups):
        rows = groups == g
        if not _two_classes(y[rows]):
            continue
        real = placements(y[rows], score[rows])
        other = [placements(y[rows], c[rows]) for c in comparators]
        d_pos = real[0] - np.mean([o[0] for o in other], axis=0)
        d_neg = real[1] - np.mean([o[1] for o in other], axis=0)
        deltas.append(d_pos.mean())
        variances.append(_variance_of_mean(d_pos) + _variance_of_mean(d_neg))
    if not deltas:
        return {"delta": None, "z": None, "p_value": None}
    delta, se = float(np.mean(deltas)), math.sqrt(sum(variances)) / len(deltas)
    z = delta / se if se > 0 else math.copysign(math.inf, delta) if delta else 0.0
    return {"delta": delta, "z": z, "p_value": float(stats.norm.sf(z))}


def _variance_of_mean(values: np.ndarray) -> float:
    return float(np.var(values, ddof=1) / len(values)) if len(values) > 1 else 0.0


def copies_t_test(real: float, copies: Sequence[float]) -> dict:
    """One-sided prediction-interval t-test of ``real`` against K null draws ``copies``:
    t = (real − mean) / (sd · √(1 + 1/K)), K − 1 degrees of freedom (5 copies: p < 0.01 needs t > 3.75).

    Returns
    -------
    ``{"t", "p_value"}``; ``None`` values with fewer than 2 copies. Copies without spread put any ``real`` above
    them at t = ∞ (p 0).
    """
    copies = np.asarray([c for c in copies if c is not None and np.isfinite(c)], dtype=float)
    if real is None or len(copies) < 2:
        return {"t": None, "p_value": None}
    sd, k = float(np.std(copies, ddof=1)), len(copies)
    diff = real - float(copies.mean())
    t = diff / (sd * math.sqrt(1 + 1 / k)) if sd > 0 else math.copysign(math.inf, diff) if diff else 0.0
    return {"t": t, "p_value": float(stats.t.sf(t, k - 1))}


def split_scores(y: np.ndarray, score: np.ndarray, groups: np.ndarray, metric) -> np.ndarray:
    """``metric(y, score)`` within each split (in the order of ``np.unique(groups)``); NaN for a split with one
    class only."""
    y, groups = np.asarray(y), np.asarray(groups)
    return np.array(
        [
            metric(y[rows], score[rows]) if _two_classes(y[rows]) else np.nan
            for rows in (groups == g for g in np.unique(groups))
        ],
        dtype=float,
    )


def _pooled(metric, y: np.ndarray, score: np.ndarray) -> float | None:
    return float(metric(y, score)) if _two_classes(y) else None


def _mean(values: np.ndarray) -> float | None:
    values = np.asarray(values, dtype=float)
    return none_if_nan(float(np.nanmean(values))) if np.isfinite(values).any() else None


def precision_curve(y: np.ndarray, score: np.ndarray, groups: np.ndarray, n_max: int) -> np.ndarray:
    """``(n_max,)`` precision among the top N of each split's ranking, averaged over splits, for N = 1 … n_max
    (a split shorter than N counts all its rows)."""
    y, score, groups = np.asarray(y, dtype=float), np.asarray(score, dtype=float), np.asarray(groups)
    curves = []
    for g in np.unique(groups):
        rows = groups == g
        ranked = y[rows][np.argsort(-score[rows], kind="stable")]
        hits = np.cumsum(ranked)[np.minimum(np.arange(n_max), len(ranked) - 1)]
        curves.append(hits / np.minimum(np.arange(1, n_max + 1), len(ranked)))
    return np.mean(curves, axis=0)


def _per_split_precision(
    y: np.ndarray, score: np.ndarray, groups: np.ndarray, *, top_n: Sequence[int], fraction: float
) -> tuple[dict[str, float | None], float | None, int]:
    """Precision at the top ``fraction`` and at each of ``top_n`` per split, averaged; the mean enrichment of the
    top ``fraction`` over each split's base rate; the mean length of a split's ranking."""
    y, groups = np.asarray(y, dtype=float), np.asarray(groups)
    per_split = []
    for g in np.unique(groups):
        rows = groups == g
        yg, sg = y[rows], score[rows]
        top = precision_at(yg, sg, top_count(len(yg), fraction))
        per_split.append(
            {
                "fraction": top,
                "enrichment": top / yg.mean() if yg.mean() > 0 else np.nan,
                **{str(n): precision_at(yg, sg, n) for n in top_n},
                "length": len(yg),
            }
        )
    key = f"{round(100 * fraction):g}%"
    precision = {key: _mean([s["fraction"] for s in per_split])}
    precision.update({str(n): _mean([s[str(n)] for s in per_split]) for n in top_n})
    length = round(float(np.mean([s["length"] for s in per_split])))
    return precision, _mean([s["enrichment"] for s in per_split]), length


def detection_metrics(
    y: np.ndarray,
    p: np.ndarray,
    *,
    groups: np.ndarray,
    train_base_rate: np.ndarray,
    label: str,
    shuffled: Sequence[np.ndarray] | None = (),
    top_n: Sequence[int] = TOP_N,
    fraction: float = TOP_FRACTION,
    n_bins: int = N_BINS,
    alpha: float = 0.05,
) -> dict:
    """The ``detection`` block of one model on the test conditions of several splits.

    Parameters
    ----------
    y, p, groups, train_base_rate
        ``(n_rows,)`` aligned, one row per (split, test condition): 0/1 label, predicted probability of an effect,
        the split, and that split's share of positive training conditions.
    label
        The label's rule, e.g. ``"signal_to_noise > 1.1"``.
    shuffled
        Probabilities of the same model refitted on each row-shuffled copy of the embeddings, aligned with ``p``.
        ``None``: a block with no control (the well-studied baseline): ``shuffled``, ``tests``, ``p_value`` and
        ``verdict`` are ``None``.
    top_n, fraction
        Top lists whose precision is reported (per split, averaged).
    n_bins
        Equal-width bins of the ECE.
    alpha
        Level of the verdict.

    Returns
    -------
    ``{"label", "n", "positives", "base_rate", "auroc", "auroc_sd", "auroc_pooled", "average_precision",
    "average_precision_pooled", "precision_at": {"10%", "25", "50"}, "ranked_per_split", "enrichment_at_10%",
    "brier", "brier_base_rate", "ece", "ece_floor", "shuffled": {"auroc", "auroc_pooled", "average_precision",
    "aurocs"}, "tests": {"delong_p", "copies_t_p"}, "p_value", "verdict"}``; ``verdict`` is ``signal`` when the
    real AUROC exceeds the shuffled copies' mean and ``p_value`` (the larger of the two tests' p-values) is below
    ``alpha``, else ``no evidence``. Undefined values (one class only, no copies) are ``None``.
    """
    y = np.asarray(y).astype(int)
    p, groups = np.asarray(p, dtype=float), np.asarray(groups)
    aurocs = split_scores(y, p, groups, roc_auc_score)
    precision, enrichment, length = _per_split_precision(y, p, groups, top_n=top_n, fraction=fraction)
    out = {
        "label": label,
        "n": len(y),
        "positives": int(y.sum()),
        "base_rate": float(y.mean()) if len(y) else None,
        "auroc": _mean(aurocs),
        "auroc_sd": seed_sd(aurocs),
        "auroc_pooled": _pooled(roc_auc_score, y, p),
        "average_precision": _mean(split_scores(y, p, groups, average_precision_score)),
        "average_precision_pooled": _pooled(average_precision_score, y, p),
        "precision_at": precision,
        "ranked_per_split": length,
        f"enrichment_at_{next(iter(precision))}": enrichment,
        "brier": float(brier_score_loss(y, p)),
        "brier_base_rate": float(brier_score_loss(y, np.asarray(train_base_rate, dtype=float))),
        "ece": expected_calibration_error(y, p, n_bins=n_bins),
        "ece_floor": ece_floor(p, n_bins=n_bins),
    }
    out.update(_shuffled_test(y, p, groups, None if shuffled is None else list(shuffled), out["auroc"], alpha))
    return out


def _shuffled_test(
    y: np.ndarray, p: np.ndarray, groups: np.ndarray, shuffled: list[np.ndarray] | None, auroc, alpha: float
) -> dict:
    """The ``shuffled``, ``tests``, ``p_value`` and ``verdict`` keys of :func:`detection_metrics`."""
    if shuffled is None:
        return {"shuffled": None, "tests": None, "p_value": None, "verdict": None}
    if not shuffled:
        return {"shuffled": None, "tests": None, "p_value": None, "verdict": NO_EVIDENCE}
    copies = [_mean(split_scores(y, s, groups, roc_auc_score)) for s in shuffled]
    tests = {
        "delong_p": delong_test(y, p, shuffled, groups)["p_value"],
        "copies_t_p": copies_t_test(auroc, copies)["p_value"],
    }
    shuffled_auroc = _mean(_nan(copies))
    known = [v for v in tests.values() if v is not None]
    p_value = max(known) if known else None
    better = auroc is not None and shuffled_auroc is not None and auroc > shuffled_auroc
    return {
        "shuffled": {
            "auroc": shuffled_auroc,
            "auroc_pooled": _mean(_nan([_pooled(roc_auc_score, y, s) for s in shuffled])),
            "average_precision": _mean(
                _nan([_mean(split_scores(y, s, groups, average_precision_score)) for s in shuffled])
            ),
            "aurocs": copies,
        },
        "tests": tests,
        "p_value": p_value,
        "verdict": SIGNAL if better and p_value is not None and p_value < alpha else NO_EVIDENCE,
    }


def _nan(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)
