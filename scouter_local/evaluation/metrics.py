"""Metrics as published (Scouter/GEARS), per condition.

On each condition, over its top-20 non-dropout DE genes (perturbed genes excluded), the mean predicted profile is
compared with the mean observed one: ``normmse`` = MSE(obs, pred) / MSE(obs, ctrl); ``pearson_delta_top20`` and
``pearson_delta_all`` = Pearson(obs − ctrl, pred − ctrl) on those genes / on all genes; ``direction_top20`` =
share of top-20 genes whose predicted change has the observed sign; ``pearson_centred_top20`` = Pearson(obs − ref,
pred − ref) on the top-20 genes, ``ref`` the mean profile of the training conditions (Systema, Viñas Torné et al.
2025): ``train_mean`` scores 0 there by construction, so it shows only what a method adds to the shared response.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from scouter_local.stats import pearson

METRICS = ("normmse", "pearson_delta_top20", "pearson_delta_all", "direction_top20", "pearson_centred_top20")


#: Metrics where a larger value is better (NormMSE is an error).
HIGHER_IS_BETTER = {
    "normmse": False,
    "pearson_delta_top20": True,
    "pearson_delta_all": True,
    "direction_top20": True,
    "pearson_centred_top20": True,
}


#: Relative spread below which a prediction's departure from the training mean counts as flat.
_FLAT = 1e-6


def condition_metrics(
    observed: np.ndarray,
    predicted: np.ndarray,
    control: np.ndarray,
    top: np.ndarray,
    *,
    train_mean_profile: np.ndarray | None = None,
) -> dict[str, float]:
    """Metrics of one condition.

    Parameters
    ----------
    observed, predicted, control
        ``(n_genes,)`` mean observed, mean predicted and mean control profiles (control = 0 for delta data).
    top
        Indices of the condition's top-20 DE genes.
    train_mean_profile
        ``(n_genes,)`` mean profile of the training conditions (what ``train_mean`` predicts), the reference of
        ``pearson_centred_top20``; ``None``: that metric is NaN.
    """
    o, p, c = observed[top], predicted[top], control[top]
    base = float(np.mean((o - c) ** 2))
    return {
        "normmse": float(np.mean((o - p) ** 2)) / base if base > 0 else float("nan"),
        "pearson_delta_top20": float(pearson(o - c, p - c)),
        "pearson_delta_all": float(pearson(observed - control, predicted - control)),
        "direction_top20": float(np.mean(np.sign(p - c) == np.sign(o - c))) if len(top) else float("nan"),
        "pearson_centred_top20": float("nan")
        if train_mean_profile is None
        else centred_pearson(o, p, train_mean_profile[top]),
    }


def centred_pearson(observed: np.ndarray, predicted: np.ndarray, reference: np.ndarray) -> float:
    """Pearson of ``predicted − reference`` against ``observed − reference`` (``(n,)`` arrays).

    A prediction whose departure from ``reference`` is constant on these genes (``train_mean`` itself: none at all),
    to float32 precision (a spread under 1e-6 of the profiles' scale), scores 0: it says nothing about which genes
    move apart from the shared response. An observed side that is constant there (or fewer than 2 genes) leaves
    the correlation undefined: NaN.
    """
    observed, predicted, reference = (np.asarray(a, dtype=np.float64) for a in (observed, predicted, reference))
    moved = observed - reference
    if len(moved) < 2 or np.ptp(moved) == 0:
        return float("nan")
    departure = predicted - reference
    if np.ptp(departure) <= _FLAT * (np.abs(predicted).max() + np.abs(reference).max()):
        return 0.0
    return float(pearson(moved, departure))


def none_if_nan(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def seed_sd(values: Sequence[float | None]) -> float | None:
    """Standard deviation of per-seed values (``None`` with fewer than two defined values)."""
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.std(values, ddof=1)) if len(values) > 1 else None
