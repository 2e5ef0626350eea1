"""The noise ceiling: what a perfect predictor of each condition's true mean would score against its observed mean."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from scouter_local.data.perturbation import PerturbationData
from scouter_local.data.splits import subgroup
from scouter_local.evaluation.results import CEILING, Evaluation
from scouter_local.evaluation.strong import StrongTargets


def noise_ceiling(
    data: PerturbationData,
    conditions: Sequence[str],
    train_conditions: Sequence[str],
    *,
    noise: Mapping[str, float] | None = None,
    strong: StrongTargets | None = None,
) -> Evaluation | None:
    """What a perfect predictor of each condition's *true* mean profile would score against its observed mean.

    Single cells: the observed mean of condition ``c`` is its true mean plus noise of variance ``var_g / n_c``
    per gene ``g`` (the cells' variance and count kept by the loader; the control mean is common to both sides).
    Hence, on the genes a metric uses, NormMSE ≈ Σ var/n ÷ Σ (obs − ctrl)²; Pearson Δ ≈ √(1 − mean(var/n) ÷
    Var(obs − ctrl)) (the attenuation of a correlation by measurement noise, the across-gene variance of the true
    change estimated as observed minus noise); direction ≈ mean Φ(|obs − ctrl| / √(var/n)).

    The top-20 genes are chosen on the same noisy means, so a perfect predictor's realised error there is somewhat
    above this (selection on noise): the ceiling is the metric's noise floor, not a score a method must reach.

    The centred Pearson is attenuated the same way, with the training conditions' mean profile in place of the
    control mean (undefined without training conditions).

    Pseudo-bulk deltas keep no variance; with ``noise`` (condition → signal-to-noise ratio: observed effect energy
    over expected noise energy on all genes), Pearson Δ on all genes ≈ √(1 − 1/snr); the other metrics and files
    without ``noise`` have no ceiling (``None`` is returned when nothing can be computed).
    """
    from scipy.stats import norm

    if data.is_delta and noise is None:
        return None
    control = data.control_mean().astype(np.float64)
    reference = data.subset(train_conditions).mean_profile().astype(np.float64) if train_conditions else None
    rows = []
    for c in conditions:
        row = {"condition": c, "subgroup": subgroup(c, train_conditions), **(strong.row(c) if strong else {})}
        if data.is_delta:
            snr = noise.get(c, float("nan"))
            row.update(
                normmse=np.nan,
                pearson_delta_top20=np.nan,
                direction_top20=np.nan,
                pearson_centred_top20=np.nan,
                pearson_delta_all=math.sqrt(max(0.0, 1.0 - 1.0 / snr)) if snr > 0 else np.nan,
            )
        else:
            i = data.stats.index(c)
            delta = data.stats.mean[i].astype(np.float64) - control
            se2 = data.stats.var[i].astype(np.float64) / data.stats.n[i]
            top = data.de_genes[c]
            row.update(
                normmse=float(se2[top].sum() / np.sum(delta[top] ** 2)) if np.any(delta[top]) else np.nan,
                pearson_delta_top20=_attenuation(delta[top], se2[top]),
                pearson_delta_all=_attenuation(delta, se2),
                direction_top20=float(np.mean(norm.cdf(np.abs(delta[top]) / np.sqrt(np.maximum(se2[top], 1e-30)))))
                if len(top)
                else np.nan,
                pearson_centred_top20=np.nan
                if reference is None
                else _attenuation(data.stats.mean[i][top] - reference[top], se2[top]),
            )
        rows.append(row)
    return Evaluation.from_rows(rows, method=CEILING, info={"strong_rule": strong.rule()} if strong else None)


def _attenuation(delta: np.ndarray, se2: np.ndarray) -> float:
    """Expected Pearson of the true change with the observed ``delta`` given per-gene noise variances ``se2``."""
    if len(delta) < 2:
        return float("nan")
    total = float(np.var(delta))
    return math.sqrt(max(0.0, 1.0 - float(np.mean(se2)) / total)) if total > 0 else float("nan")


def gap_closed(method: float | None, baseline: float | None, ceiling: float | None) -> float | None:
    """Fraction of the gap from ``baseline`` (``train_mean``) to the noise ``ceiling`` that ``method`` closes."""
    if None in (method, baseline, ceiling) or ceiling == baseline:
        return None
    return (method - baseline) / (ceiling - baseline)
