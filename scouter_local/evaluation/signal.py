"""The shuffled-embedding control: a method on row-permuted embeddings, and the paired test of whether the real
embeddings beat it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scouter_local.data.perturbation import PerturbationData

if TYPE_CHECKING:
    from scouter_local.embedding.sets import EmbeddingSet
import dataclasses

from scouter_local.embedding.sets import EmbeddingSet
from scouter_local.evaluation.metrics import HIGHER_IS_BETTER, none_if_nan
from scouter_local.evaluation.results import Evaluation

#: Signal verdicts in words.
SIGNAL, NO_EVIDENCE = "signal", "no evidence"


def signal_test(
    real: Evaluation,
    shuffled: Sequence[Evaluation],
    *,
    metric: str,
    group: str = "overall",
    n_permutations: int = 10000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict:
    """Does a method on real embeddings beat the same method on row-permuted embeddings (the control)?

    Paired over the conditions of ``group`` (rows matched by ``seed`` and ``condition``): each condition's real
    score against the mean of its scores under the permutations; a one-sided sign-flip permutation test of the mean
    paired difference (better = positive; for NormMSE, lower is better).

    Returns
    -------
    ``{"metric", "group", "n", "real", "shuffled", "delta", "p_value", "verdict"}``; ``verdict`` is ``signal``
    when ``delta > 0`` and ``p_value < alpha``, else ``no evidence``.
    """
    keys = [k for k in ("seed", "condition") if k in real.conditions]
    base = real.group(group)[keys + [metric]].rename(columns={metric: "real"})
    control = pd.concat([s.conditions[keys + [metric]] for s in shuffled]).groupby(keys, as_index=False)[metric].mean()
    paired = base.merge(control.rename(columns={metric: "shuffled"}), on=keys).dropna()
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    d = sign * (paired["real"].to_numpy() - paired["shuffled"].to_numpy())
    out = {
        "metric": metric,
        "group": group,
        "n": int(len(d)),
        "real": none_if_nan(paired["real"].mean()),
        "shuffled": none_if_nan(paired["shuffled"].mean()),
        "delta": none_if_nan(d.mean()) if len(d) else None,
        "p_value": None,
        "verdict": NO_EVIDENCE,
    }
    if len(d):
        flips = np.random.default_rng(seed).choice((-1.0, 1.0), size=(n_permutations, len(d)))
        out["p_value"] = float((1 + np.sum((flips * d).mean(axis=1) >= d.mean() - 1e-12)) / (1 + n_permutations))
        if d.mean() > 0 and out["p_value"] < alpha:
            out["verdict"] = SIGNAL
    return out


def shuffled_embeddings(embeddings: EmbeddingSet, data: PerturbationData, seed: int) -> EmbeddingSet:
    """``embeddings`` with the vectors of the screen's genes (``data.gene_rows``) permuted among them (seeded)."""
    rows = np.unique(list(data.gene_rows.values()))
    vectors = embeddings.vectors.copy()
    vectors[rows] = embeddings.vectors[np.random.default_rng(seed).permutation(rows)]
    return dataclasses.replace(
        embeddings,
        vectors=vectors,
        name=f"{embeddings.name}~shuffled{seed}",
        fingerprint=f"{embeddings.fingerprint}~shuffled{seed}",
    )
