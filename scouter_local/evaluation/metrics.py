"""Metrics as published (Scouter/GEARS), per condition.

On each condition, over its top-20 non-dropout DE genes (perturbed genes excluded), the mean predicted profile is
compared with the mean observed one: ``normmse`` = MSE(obs, pred) / MSE(obs, ctrl); ``pearson_delta_top20`` and
``pearson_delta_all`` = Pearson(obs − ctrl, pred − ctrl) on those genes / on all genes; ``direction_top20`` =
share of top-20 genes whose predicted change has the observed sign.
"""

from __future__ import annotations

import math

import numpy as np

from scouter_local.stats import pearson

METRICS = ("normmse", "pearson_delta_top20", "pearson_delta_all", "direction_top20")


#: Metrics where a larger value is better (NormMSE is an error).
HIGHER_IS_BETTER = {"normmse": False, "pearson_delta_top20": True, "pearson_delta_all": True, "direction_top20": True}


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
        "pearson_delta_top20": float(pearson(o - c, p - c)),
        "pearson_delta_all": float(pearson(observed - control, predicted - control)),
        "direction_top20": float(np.mean(np.sign(p - c) == np.sign(o - c))) if len(top) else float("nan"),
    }


def none_if_nan(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)
