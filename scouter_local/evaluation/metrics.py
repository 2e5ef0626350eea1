"""Metrics as published (Scouter/GEARS), per condition.

On each condition, over its top-20 non-dropout DE genes (perturbed genes excluded), the mean predicted profile is
compared with the mean observed one: ``normmse`` = MSE(obs, pred) / MSE(obs, ctrl); ``pearson_delta_top20`` and
``pearson_delta_all`` = Pearson(obs − ctrl, pred − ctrl) on those genes / on all genes; ``direction_top20`` =
share of top-20 genes whose predicted change has the observed sign.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    pass

METRICS = ("normmse", "pearson_delta_top20", "pearson_delta_all", "direction_top20")


#: Metrics where a larger value is better (NormMSE is an error).
HIGHER_IS_BETTER = {"normmse": False, "pearson_delta_top20": True, "pearson_delta_all": True, "direction_top20": True}


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant or has fewer than 2 values."""
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def condition_metrics(
    observed: np.ndarray, predicted: np.ndarray, control: np.ndarray, top: np.ndarray
) -> dict[str, float]:
    """Metrics of one condition.

    Parameters
    ----------
    observed, predicted, control
        ``(n_genes,)`` mean observed, mean predicted and mean control profiles (control = 0 for delta data).
    top
        Indices of the condition's top-20 DE genes.
    """
    o, p, c = observed[top], predicted[top], control[top]
    base = float(np.mean((o - c) ** 2))
    return {
        "normmse": float(np.mean((o - p) ** 2)) / base if base > 0 else float("nan"),
        "pearson_delta_top20": _pearson(o - c, p - c),
        "pearson_delta_all": _pearson(observed - control, predicted - control),
        "direction_top20": float(np.mean(np.sign(p - c) == np.sign(o - c))) if len(top) else float("nan"),
    }


def _none_if_nan(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)
