"""The in-memory embedding set every downstream stage (index, predictor) consumes, and its post-processing.

Decoder LLM embeddings are highly anisotropic (unrelated genes at cosine 0.9+): one shared direction dominates
every vector. :class:`PostProcessor` removes it by subtracting the corpus mean (``center``) and can additionally
equalise the variance of the principal axes (``whiten``; Su et al. 2021, "Whitening sentence representations").

"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

from gene_corpus.errors import InputError

POSTPROCESS_MODES = ("none", "center", "whiten")


#: What each kind of set (its ``spec['source']``) holds, for messages.
SET_SOURCES = {
    "embed": "text embeddings of a model",
    "import": "embeddings imported from a file",
    "go": "GO-annotation vectors",
    "combine": "a combination of other sets",
}


class PostProcessor:
    """Fit on the raw vectors of an embedding set, then transform them (and later text queries) the same way.

    Parameters
    ----------
    mode
        ``none``, ``center`` (subtract the mean) or ``whiten`` (centre, rotate onto the principal axes and divide
        each by its standard deviation).
    n_components
        Components kept by ``whiten`` (default ``min(dim, n_samples - 1)``).
    eps
        Added to each variance, relative to the largest one, before the square root.

    Attributes
    ----------
    mean_
        ``(dim,)`` float64 corpus mean (``center``/``whiten``).
    components_
        ``(dim, n_components)`` float64 whitening matrix (``whiten``).
    """

    def __init__(self, mode: str = "none", *, n_components: int | None = None, eps: float = 1e-6) -> None:
        if mode not in POSTPROCESS_MODES:
            raise InputError(f"post-processing {mode!r} is not one of {', '.join(POSTPROCESS_MODES)}")
        self.mode = mode
        self.n_components = n_components
        self.eps = eps
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None

    def fit(self, vectors: np.ndarray) -> "PostProcessor":
        """Fit on ``(n_samples, dim)`` raw vectors."""
        if self.mode == "none":
            return self
        if len(vectors) < 2:
            raise InputError(f"post-processing {self.mode!r} needs at least 2 genes in the set, got {len(vectors)}")
        x = np.asarray(vectors, dtype=np.float64)
        self.mean_ = x.mean(axis=0)
        if self.mode == "whiten":
            _, s, vt = np.linalg.svd(x - self.mean_, full_matrices=False)
            k = min(self.n_components or x.shape[1], x.shape[1], len(x) - 1)
            variance = s[:k] ** 2 / (len(x) - 1)
            self.components_ = vt[:k].T / np.sqrt(variance + self.eps * variance[0])
        return self

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, dim)`` raw → ``(n, dim')`` float32 (``dim'`` = kept components for ``whiten``)."""
        x = np.asarray(vectors, dtype=np.float64)
        if self.mode == "none":
            return x.astype(np.float32)
        if self.mean_ is None:
            raise RuntimeError("PostProcessor.transform called before fit")
        x = x - self.mean_
        if self.components_ is not None:
            x = x @ self.components_
        return x.astype(np.float32)

    def to_bytes(self) -> bytes | None:
        """The fitted parameters as ``.npz`` bytes (``None`` for ``none``)."""
        if self.mode == "none":
            return None
        buffer = io.BytesIO()
        arrays = {"mean": self.mean_} | ({"components": self.components_} if self.components_ is not None else {})
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, mode: str, data: bytes | None) -> "PostProcessor":
        """Rebuild a post-processor stored by :meth:`to_bytes`."""
        processor = cls(mode)
        if mode != "none":
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                processor.mean_ = arrays["mean"]
                processor.components_ = arrays["components"] if "components" in arrays.files else None
        return processor


def unit_rows(x: np.ndarray, dtype: np.dtype | type = np.float32) -> np.ndarray:
    """``(n, dim)`` rows of ``x`` scaled to unit L2 norm, as a contiguous ``dtype`` array (zero rows stay zero)."""
    x = np.ascontiguousarray(x, dtype=dtype)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)


@dataclass(frozen=True)
class EmbeddingSet:
    """Gene embeddings of one named set.

    Attributes
    ----------
    name
        Set name, as given to ``scouter-local embed --set``.
    fingerprint
        Hash of how the set was made (model fingerprint, pooling, prefix, max tokens, post-processing; an imported
        file's sha256; the GO inputs and parameters; the fingerprints of combined sets), its gene keys and
        vectors; a model or index built on one set refuses another.
    symbols
        Current gene symbol of each row, length ``n_genes``.
    entrez_ids
        ``(n_genes,)`` int64 Entrez ids, ``-1`` where the gene has none (e.g. an imported symbol-keyed file).
    vectors
        ``(n_genes, dim)`` float32.
    spec
        How the set was made (model, pooling, prefix, …), as stored with it; ``spec['source']`` is a key of
        :data:`SET_SOURCES`.
    postprocessor
        The fitted post-processing already applied to ``vectors`` (apply it to new query vectors too).
    """

    name: str
    fingerprint: str
    symbols: list[str]
    entrez_ids: np.ndarray
    vectors: np.ndarray
    spec: dict = field(default_factory=dict)
    postprocessor: PostProcessor = field(default_factory=PostProcessor, compare=False, repr=False)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def rows(self) -> dict[str, int]:
        """Map of current symbol → row index."""
        return {s: i for i, s in enumerate(self.symbols)}
