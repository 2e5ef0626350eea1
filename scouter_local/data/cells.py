"""Expression rows read in bounded chunks, in memory or backed on disk, and per-condition statistics in one pass.

A screen with millions of cells never has to fit in memory: :class:`CellMatrix` wraps ``AnnData.X`` (dense,
sparse, or backed by the h5ad file) and hands out rows as dense ``float32`` blocks of a bounded size, applying
the library-size normalisation on the fly when asked; :func:`condition_stats` reads the selected rows once and
keeps, per condition, the cell count and the per-gene mean and variance — all that DE genes, the baselines,
``gene_delta`` and evaluation need.

"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm.auto import tqdm

#: Upper bound on the dense values held by one chunk (``rows × genes``): 16M floats, 64 MB as float32.
CHUNK_VALUES = 2**24


class CellMatrix:
    """Rows of an expression matrix, dense or sparse, in memory or backed on disk.

    Parameters
    ----------
    X
        ``(n_rows, n_genes)``: ``np.ndarray``, a scipy sparse matrix, or a backed ``AnnData.X`` (h5py dataset or
        anndata sparse dataset).
    target_sum
        When given, rows are raw counts normalised on read as scanpy's ``normalize_total(target_sum=…)`` then
        ``log1p``.
    """

    def __init__(self, X, *, target_sum: float | None = None) -> None:
        self.X = X
        self.target_sum = target_sum
        self.backed = not isinstance(X, np.ndarray) and not sp.issparse(X)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(int(n) for n in self.X.shape)

    @property
    def n_genes(self) -> int:
        return self.shape[1]

    def chunk_rows(self) -> int:
        """Rows per chunk such that a dense chunk holds at most :data:`CHUNK_VALUES` values."""
        return max(64, CHUNK_VALUES // max(1, self.n_genes))

    def read(self, rows: np.ndarray) -> np.ndarray | sp.csr_matrix:
        """``(len(rows), n_genes)`` rows in their stored kind (dense or CSR), normalised if asked.

        ``rows`` are file row indices, sorted for a backed file (read as contiguous slices of at most
        :meth:`chunk_rows` rows); data in memory takes them in any order.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            block = np.zeros((0, self.n_genes), dtype=np.float32)
        elif self.backed:  # contiguous slices of at most chunk_rows file rows each
            parts, size, start = [], self.chunk_rows(), 0
            while start < len(rows):
                end = int(np.searchsorted(rows, rows[start] + size))
                lo, hi = int(rows[start]), int(rows[end - 1]) + 1
                part = self.X[lo:hi]
                parts.append(part[rows[start:end] - lo] if end - start < hi - lo else part)
                start = end
            block = sp.vstack(parts, format="csr") if sp.issparse(parts[0]) else np.concatenate(parts)
        else:
            block = self.X[rows]
        if sp.issparse(block):
            block = sp.csr_matrix(block, dtype=np.float32)
        else:
            block = np.asarray(block, dtype=np.float32)
        return self._normalize(block) if self.target_sum is not None else block

    def dense(self, rows: np.ndarray) -> np.ndarray:
        """``(len(rows), n_genes)`` dense ``float32`` rows (see :meth:`read` for ``rows``)."""
        return to_dense(self.read(rows))

    def chunks(
        self, rows: np.ndarray, *, desc: str | None = None
    ) -> Iterator[tuple[slice, np.ndarray | sp.csr_matrix]]:
        """``(positions, block)`` over ``rows`` in chunks of :meth:`chunk_rows`; ``desc`` shows a progress bar."""
        size = self.chunk_rows()
        starts = range(0, len(rows), size)
        for start in tqdm(starts, desc=desc, unit="chunk", disable=desc is None or len(starts) < 4, leave=False):
            where = slice(start, min(start + size, len(rows)))
            yield where, self.read(rows[where])

    def row_totals(self, rows: np.ndarray) -> np.ndarray:
        """``(len(rows),)`` raw row sums (before normalisation)."""
        raw = CellMatrix(self.X)
        return np.concatenate([np.asarray(block.sum(axis=1)).ravel() for _, block in raw.chunks(rows)] or [np.zeros(0)])

    def _normalize(self, block):
        import scanpy as sc

        tmp = ad.AnnData(X=block)
        sc.pp.normalize_total(tmp, target_sum=self.target_sum)
        sc.pp.log1p(tmp)
        return tmp.X


def to_dense(block: np.ndarray | sp.spmatrix) -> np.ndarray:
    """A block from :meth:`CellMatrix.read` as a dense ``float32`` array."""
    return to_array(block).astype(np.float32, copy=False)


def to_array(block: np.ndarray | sp.spmatrix) -> np.ndarray:
    """Dense or sparse → dense ``np.ndarray`` (dtype kept)."""
    return block.toarray() if sp.issparse(block) else np.asarray(block)


@dataclass
class ConditionStats:
    """Per-condition sufficient statistics of the expression.

    Attributes
    ----------
    names
        Condition names, length ``k``.
    n
        ``(k,)`` cells (rows) per condition.
    mean
        ``(k, n_genes)`` float64 mean expression.
    var
        ``(k, n_genes)`` float64 unbiased variance (``ddof=1``; NaN for a single row).
    """

    names: list[str]
    n: np.ndarray
    mean: np.ndarray
    var: np.ndarray

    def __post_init__(self) -> None:
        self._index = {c: i for i, c in enumerate(self.names)}

    def __contains__(self, condition: str) -> bool:
        return condition in self._index

    def index(self, condition: str) -> int:
        return self._index[condition]

    def renamed(self, mapping: dict[str, str]) -> "ConditionStats":
        """Keep the conditions in ``mapping`` under their new names."""
        keep = [self._index[old] for old in mapping if old in self._index]
        names = [mapping[self.names[i]] for i in keep]
        return ConditionStats(names, self.n[keep], self.mean[keep], self.var[keep])


def condition_stats(
    cells: CellMatrix, rows: np.ndarray, conditions: np.ndarray, *, desc: str | None = None
) -> ConditionStats:
    """One chunked pass over ``rows`` of ``cells`` accumulating each condition's count, mean and variance.

    Parameters
    ----------
    cells
        The expression.
    rows
        ``(n,)`` sorted file rows to read.
    conditions
        ``(n,)`` condition of each row.

    Returns
    -------
    :class:`ConditionStats` with conditions in order of first appearance.
    """
    codes, names = pd.factorize(pd.Series(conditions, dtype=object), sort=False)
    k, g = len(names), cells.n_genes
    sums, sumsq = np.zeros((k, g)), np.zeros((k, g))
    for where, block in cells.chunks(rows, desc=desc):
        c = codes[where]
        onehot = sp.csr_matrix((np.ones(len(c)), (c, np.arange(len(c)))), shape=(k, len(c)))
        block = block.astype(np.float64)
        sums += to_array(onehot @ block)
        sumsq += to_array(onehot @ (block.multiply(block) if sp.issparse(block) else block * block))
    n = np.bincount(codes, minlength=k).astype(np.int64)
    mean = sums / n[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.maximum(sumsq - n[:, None] * mean**2, 0) / (n[:, None] - 1)
    var[n < 2] = np.nan
    return ConditionStats([str(c) for c in names], n, mean, var)
