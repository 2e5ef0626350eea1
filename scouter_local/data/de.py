"""Top-20 differentially expressed genes of each condition, from per-condition statistics."""

from __future__ import annotations

import numpy as np

from scouter_local.conditions import CTRL, genes_of
from scouter_local.data.cells import ConditionStats

N_TOP_DE = 20


def perturbed_gene_indices(condition: str, genes: list[str]) -> np.ndarray:
    names = set(genes_of(condition))
    return np.array([i for i, g in enumerate(genes) if g in names], dtype=np.int64)


def compute_de_genes(
    stats: ConditionStats, genes: list[str], *, is_delta: bool
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Top-20 DE genes and nonzero genes of every perturbed condition, from per-condition statistics.

    Single cells: Welch's t-test of each condition against ``ctrl`` over all genes — scanpy's
    ``rank_genes_groups(method="t-test", reference="ctrl", rankby_abs=True)``: the same statistic from the same
    means and ``ddof=1`` variances, NaN scores set to 0 — then the first 20 non-dropout genes (nonzero in the
    condition, or zero in both condition and control), as Scouter/GEARS. Deltas: the 20 genes with the largest
    ``|delta|``. Perturbed genes are then removed from the top 20.

    Returns
    -------
    ``(de_genes, nonzero_genes)``: condition → sorted-by-rank ``int64`` gene indices, condition → gene indices.
    """
    perts = [c for c in stats.names if c != CTRL]
    idx = [stats.index(c) for c in perts]
    means = stats.mean[idx]
    nonzero = {c: np.flatnonzero(means[i] != 0) for i, c in enumerate(perts)}
    if is_delta:
        score = np.abs(means)
        non_dropout = np.ones_like(means, dtype=bool)
    else:
        from scipy.stats import ttest_ind_from_stats

        ctrl = stats.index(CTRL)
        with np.errstate(invalid="ignore", divide="ignore"):
            score, _ = ttest_ind_from_stats(
                means,
                np.sqrt(stats.var[idx]),
                stats.n[idx][:, None],
                stats.mean[ctrl],
                np.sqrt(stats.var[ctrl]),
                stats.n[ctrl],
                equal_var=False,
            )
        score = np.abs(np.nan_to_num(score, nan=0.0))
        non_dropout = (means != 0) | (stats.mean[ctrl] == 0)
    de: dict[str, np.ndarray] = {}
    for i, c in enumerate(perts):
        ranked = np.argsort(-score[i], kind="stable")
        top = ranked[non_dropout[i][ranked]][:N_TOP_DE]
        de[c] = top[~np.isin(top, perturbed_gene_indices(c, genes))]
    return de, nonzero
