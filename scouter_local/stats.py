"""Statistics shared by the predictors and the evaluation.

>>> float(pearson(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 7.0])))  # doctest: +ELLIPSIS
0.99...
>>> float(pearson(np.ones(3), np.arange(3.0))), float(pearson(np.ones(3), np.arange(3.0), constant=0.0))
(nan, 0.0)
"""

from __future__ import annotations

import numpy as np


def pearson(a: np.ndarray, b: np.ndarray, *, constant: float = np.nan) -> np.ndarray:
    """Pearson correlation along the last axis of ``a`` and ``b`` (broadcast against each other).

    Parameters
    ----------
    a, b
        ``(..., n)`` arrays.
    constant
        The value where either side is constant or has fewer than 2 values: NaN (undefined, as a metric reports it)
        or 0 (no correlation, as a cross-validation score counts it).

    Returns
    -------
    ``(...)`` float64 correlations (a 0-d array for 1-d inputs).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    out = np.full(np.broadcast_shapes(a.shape, b.shape)[:-1], constant, dtype=np.float64)
    return np.divide((a * b).sum(-1), den, out=out, where=den > 0)
