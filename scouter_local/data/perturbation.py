"""The perturbation data every later stage consumes: rows, conditions, per-condition statistics, DE genes and the
genes' embedding rows (:class:`PerturbationData`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from gene_corpus.errors import InputError
from scouter_local.conditions import CTRL
from scouter_local.data.cells import CellMatrix, ConditionStats


@dataclass
class PerturbationData:
    """Control and perturbed cells (or pseudo-bulk deltas) of one file, with per-condition statistics.

    The expression stays where it is (in memory, or backed in the h5ad file) and is read in chunks; everything
    summarised per condition (means, variances, DE genes) is computed once by :func:`perturbation_data`.

    Attributes
    ----------
    cells
        The file's ``(n_file_rows, n_genes)`` expression (or deltas), read through :class:`CellMatrix`.
    rows
        ``(n_obs,)`` sorted file rows that belong to this data.
    conditions
        ``(n_obs,)`` condition of each row: ``ctrl``, ``A+ctrl`` or ``A+B``.
    stats
        Count, mean and variance per condition (:class:`ConditionStats`).
    genes
        Readout gene names, length ``n_genes``.
    is_delta
        Rows are deltas from control (no control rows; control is the zero vector).
    de_genes
        Condition → indices of its top-20 non-dropout DE genes, perturbed genes excluded.
    nonzero_genes
        Condition → indices of genes with a nonzero mean in that condition (the training loss uses them).
    excluded
        Condition (GEARS spelling, genes as written in the file) → why it was left out.
    gene_rows
        Current gene symbol → row of the embedding set (filled by :func:`resolve_genes`).
    source
        ``{"path": …, "options": …}`` of the file read.
    noise
        Condition → mean of ``obs[options.noise_key]`` over its rows (empty without a noise column).
    """

    cells: CellMatrix
    rows: np.ndarray
    conditions: np.ndarray
    stats: ConditionStats
    genes: list[str]
    is_delta: bool
    de_genes: dict[str, np.ndarray]
    nonzero_genes: dict[str, np.ndarray]
    excluded: dict[str, str] = field(default_factory=dict)
    gene_rows: dict[str, int] = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    noise: dict[str, float] = field(default_factory=dict)

    @property
    def n_genes(self) -> int:
        return self.cells.n_genes

    @property
    def n_obs(self) -> int:
        return len(self.rows)

    @property
    def perturbations(self) -> list[str]:
        """Perturbed conditions in order of first appearance (the order Scouter's split shuffles)."""
        return [c for c in pd.unique(self.conditions) if c != CTRL]

    def expression(self, positions: np.ndarray | slice = slice(None)) -> np.ndarray:
        """``(n, n_genes)`` dense rows at ``positions`` of this data (all by default) — for small data only."""
        return self.cells.dense(self.rows[positions])

    def sample_cells(self, condition: str, n: int, seed: int = 0) -> np.ndarray:
        """``(min(n, n_cells), n_genes)`` dense rows of ``condition``, a seeded sample when it has more than ``n``;
        one zero row for ``ctrl`` of delta data."""
        if self.is_delta and condition == CTRL:
            return np.zeros((1, self.n_genes), dtype=np.float32)
        rows = self.rows[self.conditions == condition]
        if len(rows) > n:
            rows = np.sort(np.random.RandomState(seed).choice(rows, n, replace=False))
        return self.cells.dense(rows)

    def control_mean(self) -> np.ndarray:
        """``(n_genes,)`` mean control profile (zeros for delta data)."""
        if self.is_delta:
            return np.zeros(self.n_genes, dtype=np.float32)
        return self.condition_mean(CTRL)

    def sampling_variance(self, condition: str) -> np.ndarray:
        """``(n_genes,)`` variance of the observed mean profile of ``condition`` (cells' variance / count); zeros for
        pseudo-bulk deltas, which keep no variance."""
        if self.is_delta:
            return np.zeros(self.n_genes)
        i = self.stats.index(condition)
        return self.stats.var[i].astype(np.float64) / self.stats.n[i]

    def reliability(self, conditions: Sequence[str]) -> np.ndarray:
        """``(len(conditions),)`` share of each condition's observed change from control that is signal, in [0, 1]:
        ``1 - 1/snr`` from the noise column; for single cells ``1 - Σ sampling variance (condition and control) /
        ||observed change||²``; 1 for pseudo-bulk rows without a noise column."""
        out = np.ones(len(conditions))
        if not self.noise and not self.is_delta:
            control, control_variance = self.control_mean(), self.sampling_variance(CTRL)
        for i, c in enumerate(conditions):
            if self.noise:
                snr = self.noise.get(c, np.nan)
                out[i] = 1.0 - 1.0 / snr if snr > 0 else 0.0
            elif not self.is_delta:
                change = self.condition_mean(c).astype(np.float64) - control
                energy = float(change @ change)
                noise = float(np.nansum(self.sampling_variance(c) + control_variance))
                out[i] = 1.0 - noise / energy if energy > 0 else 0.0
        return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)

    def mean_profile(self) -> np.ndarray:
        """``(n_genes,)`` mean of the perturbed conditions' mean profiles (what ``train_mean`` predicts)."""
        return np.mean([self.condition_mean(c) for c in self.perturbations], axis=0).astype(np.float32)

    def condition_mean(self, condition: str) -> np.ndarray:
        """``(n_genes,)`` mean observed profile of one condition."""
        if condition not in self.stats:
            raise InputError(f"condition {condition!r} has no cells in {self.source.get('path', 'the data')}")
        return self.stats.mean[self.stats.index(condition)].astype(np.float32)

    def subset(self, conditions: Sequence[str]) -> "PerturbationData":
        """The rows of ``conditions`` plus all control rows (annotations kept)."""
        keep = np.isin(self.conditions, list(conditions)) | (self.conditions == CTRL)
        kept = self.conditions[keep]
        return replace(
            self, rows=self.rows[keep], conditions=kept, stats=self.stats.renamed({c: c for c in pd.unique(kept)})
        )
