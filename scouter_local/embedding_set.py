"""The in-memory embedding set every downstream stage (index, predictor) consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class EmbeddingSet:
    """Gene embeddings of one named set.

    Attributes
    ----------
    name
        Set name, as given to ``scouter-local embed --set``.
    fingerprint
        Hash of (model fingerprint, pooling, prefix, max tokens, post-processing, gene keys, vectors); a model
        or index built on one set refuses another.
    symbols
        Current gene symbol of each row, length ``n_genes``.
    entrez_ids
        ``(n_genes,)`` int64 Entrez ids, ``-1`` where the gene has none (e.g. an imported symbol-keyed file).
    vectors
        ``(n_genes, dim)`` float32.
    spec
        How the set was made (model, pooling, prefix, …), as stored with it.
    """

    name: str
    fingerprint: str
    symbols: list[str]
    entrez_ids: np.ndarray
    vectors: np.ndarray
    spec: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def rows(self) -> dict[str, int]:
        """Map of current symbol → row index."""
        return {s: i for i, s in enumerate(self.symbols)}
