"""FAISS nearest-neighbour search over an embedding set (cosine = inner product of normalised vectors).

An index lives in a folder beside the database, ``<db>.index/<set>/`` (see
:func:`scouter_local.embedding.store.sidecar_dir`), holding ``index.faiss`` and ``manifest.json`` (set name and
fingerprint, index kind, metric, dim and the id map: row → Entrez id and symbol). It is written to a temporary
folder and moved into place, so a reader sees the old index or the new one, never half of one. Loading checks
the manifest against the set: an index built on other vectors is an error, not a wrong answer;
:meth:`NeighborIndex.open` rebuilds a stale index instead (the set is the source of truth).

Index kinds: ``flat`` (exact inner product), ``hnsw`` (HNSW graph, M=32, efSearch=128) and ``ivf`` (IVF-Flat,
4·√n lists, 16 probed). ``auto`` is ``flat`` below :data:`ANN_THRESHOLD` vectors and ``hnsw`` above. A query
restricted to candidate genes (e.g. trained perturbations) is scored exactly over those genes.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from gene_corpus import Corpus
from gene_corpus.checks import names_of
from gene_corpus.errors import InputError, first_line
from gene_corpus.files import atomic_dir
from scouter_local.embedding.sets import EmbeddingSet, unit_rows
from scouter_local.embedding.store import check_set_name, load_embedding_set, open_corpus, sidecar_dir

log = logging.getLogger(__name__)

INDEX_KINDS = ("auto", "flat", "hnsw", "ivf")
ANN_THRESHOLD = 100_000
MANIFEST = "manifest.json"
INDEX_FILE = "index.faiss"
_HNSW_M, _HNSW_EF, _IVF_PROBE = 32, 128, 16


@dataclasses.dataclass(frozen=True)
class Neighbor:
    """One neighbour: ``rank`` (1-based), gene, and cosine similarity to the query."""

    rank: int
    symbol: str
    entrez_id: int
    name: str
    cosine: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def index_dir(db_path: str | os.PathLike, set_name: str) -> Path:
    """``<db>.index/<set>/``: where the index of a set is kept."""
    return sidecar_dir(db_path, "index") / check_set_name(set_name)


def _faiss_index(x: np.ndarray, kind: str, seed: int):
    import faiss

    n, dim = x.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, _HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = _HNSW_EF
    else:
        nlist = max(1, min(int(4 * np.sqrt(n)), n // 39 or 1))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.train(x)
        index.nprobe = min(_IVF_PROBE, nlist)
    index.add(x)
    return index


def _read_manifest(path: Path) -> dict:
    """The manifest of the index in ``path``; no index there, or a damaged manifest, is an :class:`InputError`."""
    if not (path / MANIFEST).is_file() or not (path / INDEX_FILE).is_file():
        raise InputError(f"no neighbour index in {path}; build it with `scouter-local neighbors` or NeighborIndex.open")
    try:
        return json.loads((path / MANIFEST).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"index {path}: {MANIFEST} is damaged; rebuild it") from exc


def _check_manifest(manifest: dict, emb: EmbeddingSet, path: Path) -> None:
    """An index built for another set, other vectors (fingerprint) or other genes is an :class:`InputError`."""
    if manifest.get("set_fingerprint") != emb.fingerprint:
        raise InputError(
            f"index {path} was built for set {manifest.get('set')!r} with fingerprint "
            f"{manifest.get('set_fingerprint')}, but set {emb.name!r} has {emb.fingerprint}; rebuild it"
        )
    if manifest.get("entrez_ids") != [int(e) for e in emb.entrez_ids] or manifest.get("symbols") != list(emb.symbols):
        raise InputError(f"index {path} maps its rows to other genes than set {emb.name!r}; rebuild it")


def _read_index(path: Path, emb: EmbeddingSet):
    """The FAISS index in ``path``, checked to hold one vector of ``emb.dim`` per gene of ``emb``."""
    import faiss

    try:
        index = faiss.read_index(str(path / INDEX_FILE))
    except RuntimeError as exc:
        raise InputError(f"index {path / INDEX_FILE} is damaged ({first_line(exc, 80)}); rebuild it") from exc
    if index.ntotal != len(emb.symbols) or index.d != emb.dim:
        raise InputError(
            f"index {path / INDEX_FILE} holds {index.ntotal}×{index.d} vectors, set {emb.name!r} "
            f"{len(emb.symbols)}×{emb.dim}; rebuild it"
        )
    return index


class NeighborIndex:
    """Nearest genes of a gene, a text or a list of genes within one embedding set.

    Parameters
    ----------
    emb
        The embedding set (post-processed vectors).
    index
        A FAISS index over the normalised rows of ``emb.vectors`` (ids = row numbers).
    kind
        Index kind, see module doc.
    names
        Entrez id → full gene name, for output.

    Examples
    --------
    >>> nn = NeighborIndex.open("corpus.duckdb", "minilm")           # doctest: +SKIP
    >>> nn.query_gene("RPL11", k=5)                                  # doctest: +SKIP
    """

    def __init__(self, emb: EmbeddingSet, index, kind: str, names: dict[int, str] | None = None) -> None:
        if index.ntotal != len(emb.symbols):
            raise InputError(
                f"index holds {index.ntotal} vectors but set {emb.name!r} has {len(emb.symbols)}; rebuild it"
            )
        self.emb = emb
        self.index = index
        self.kind = kind
        self.names = names or {}
        self._unit = unit_rows(emb.vectors)
        self._rows = emb.rows()
        self._by_entrez = {int(e): i for i, e in enumerate(emb.entrez_ids) if e >= 0}
        self._encoder = None

    # ------------------------------------------------------------------------------------ build / save / load
    @classmethod
    def build(
        cls,
        emb: EmbeddingSet,
        *,
        kind: str = "auto",
        threshold: int = ANN_THRESHOLD,
        seed: int = 0,
        names: dict[int, str] | None = None,
    ) -> "NeighborIndex":
        """Index ``emb`` in memory (``kind="auto"``: ``flat`` below ``threshold`` vectors, else ``hnsw``)."""
        if kind not in INDEX_KINDS:
            raise InputError(f"index kind {kind!r} is not one of {', '.join(INDEX_KINDS)}")
        if kind == "auto":
            kind = "flat" if len(emb.symbols) < threshold else "hnsw"
        return cls(emb, _faiss_index(unit_rows(emb.vectors), kind, seed), kind, names)

    def manifest(self) -> dict:
        """What :meth:`save` writes beside the index (and :meth:`load` checks)."""
        import faiss

        return {
            "set": self.emb.name,
            "set_fingerprint": self.emb.fingerprint,
            "kind": self.kind,
            "metric": "inner_product",
            "normalized": True,
            "dim": self.emb.dim,
            "n": len(self.emb.symbols),
            "entrez_ids": [int(e) for e in self.emb.entrez_ids],
            "symbols": list(self.emb.symbols),
            "faiss_version": faiss.__version__,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``index.faiss`` + ``manifest.json`` into folder ``path`` atomically (replacing an older index)."""
        import faiss

        path = Path(path)
        with atomic_dir(path) as tmp:
            faiss.write_index(self.index, str(tmp / INDEX_FILE))
            (tmp / MANIFEST).write_text(json.dumps(self.manifest()))
        return path

    @classmethod
    def load(
        cls, path: str | os.PathLike, emb: EmbeddingSet, *, names: dict[int, str] | None = None
    ) -> "NeighborIndex":
        """Read an index saved by :meth:`save` for ``emb``.

        Raises
        ------
        InputError
            No index there, or it was built for another set / other vectors (fingerprint or id map differ).
        """
        path = Path(path)
        manifest = _read_manifest(path)
        _check_manifest(manifest, emb, path)
        index = _read_index(path, emb)
        return cls(emb, index, manifest["kind"], names)

    @classmethod
    def open(
        cls,
        db_path: str | os.PathLike | Corpus,
        set_name: str,
        *,
        kind: str = "auto",
        threshold: int = ANN_THRESHOLD,
        rebuild: bool = True,
    ) -> "NeighborIndex":
        """Load the index of a set from ``<db>.index/<set>/``, building (and saving) it when absent or stale.

        Parameters
        ----------
        rebuild
            ``False``: a missing or mismatched index raises instead of being rebuilt.
        kind, threshold
            Used when building; an existing index of another kind is rebuilt only with an explicit ``kind``.
        """
        with open_corpus(db_path) as corpus:
            emb = load_embedding_set(corpus, set_name)
            info = corpus.gene_info(emb.entrez_ids[emb.entrez_ids >= 0].tolist())
            names = dict(zip(info["entrez_id"].astype(int), info["name"].fillna("").astype(str)))
            path = index_dir(corpus.path, set_name)
        try:
            loaded = cls.load(path, emb, names=names)
            if kind in ("auto", loaded.kind):
                return loaded
        except InputError as exc:
            if not rebuild:
                raise
            if (path / MANIFEST).is_file():
                log.info("rebuilding the neighbour index: %s", exc)
            else:
                log.info("building the neighbour index of set %r in %s", set_name, path)
        built = cls.build(emb, kind=kind, threshold=threshold, names=names)
        built.save(path)
        return built

    # ------------------------------------------------------------------------------------ queries
    def row_of(self, gene: str | int, corpus: Corpus | None = None) -> int:
        """Row of a gene given as Entrez id, current symbol, or (with ``corpus``) any alias the corpus resolves.

        Raises
        ------
        InputError
            The gene is unknown (with close symbols) or has no vector in the set.
        """
        text = str(gene).strip()
        if text.isdigit() and int(text) in self._by_entrez:
            return self._by_entrez[int(text)]
        if text in self._rows:
            return self._rows[text]
        if corpus is not None:
            entrez = corpus.resolve_one(text).entrez_id  # raises with close matches for unknown / ambiguous genes
            if entrez in self._by_entrez:
                return self._by_entrez[entrez]
            raise InputError(
                f"gene {text!r} (Entrez {entrez}) has no vector in set {self.emb.name!r}; "
                f"embed it with `scouter-local embed --set {self.emb.name} --genes FILE`"
            )
        close = difflib.get_close_matches(text.upper(), list(self._rows), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InputError(f"gene {text!r} is not in set {self.emb.name!r}{hint}")

    def _rows_of(self, genes: Iterable[str | int] | None, corpus: Corpus | None) -> np.ndarray | None:
        return None if genes is None else np.unique([self.row_of(g, corpus) for g in names_of(genes, "candidates")])

    def search(
        self,
        queries: np.ndarray,
        k: int = 10,
        *,
        candidates: np.ndarray | None = None,
        exclude: Sequence[int | None] | None = None,
    ) -> list[list[Neighbor]]:
        """Nearest rows of post-processed query vectors.

        Parameters
        ----------
        queries
            ``(q, dim)`` vectors in the set's (post-processed) space; normalised here.
        k
            Neighbours per query.
        candidates
            Row numbers to restrict the answer to (scored exactly), or ``None`` for the whole set.
        exclude
            Per query, a row to leave out (the query gene itself) or ``None``.
        """
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        q = unit_rows(np.atleast_2d(queries))
        exclude = list(exclude) if exclude is not None else [None] * len(q)
        extra = 1 if any(e is not None for e in exclude) else 0
        if candidates is None:
            scores, rows = self.index.search(q, min(k + extra, self.index.ntotal))
        else:
            sims = q @ self._unit[candidates].T
            top = np.argsort(-sims, axis=1, kind="stable")[:, : k + extra]
            scores, rows = np.take_along_axis(sims, top, 1), candidates[top]
        return [self._neighbors(id_row, score_row, skip, k) for score_row, id_row, skip in zip(scores, rows, exclude)]

    def _neighbors(self, rows: np.ndarray, scores: np.ndarray, skip: int | None, k: int) -> list[Neighbor]:
        """The first ``k`` of one query's hits (``rows`` and ``scores``, best first) that are real rows other than
        ``skip``, as neighbours."""
        hits = [(int(r), float(s)) for r, s in zip(rows, scores) if r >= 0 and r != skip][:k]
        return [
            Neighbor(
                rank,
                self.emb.symbols[r],
                int(self.emb.entrez_ids[r]),
                self.names.get(int(self.emb.entrez_ids[r]), ""),
                round(s, 6),
            )
            for rank, (r, s) in enumerate(hits, 1)
        ]

    def query_gene(
        self,
        gene: str | int,
        k: int = 10,
        *,
        candidates: Iterable[str | int] | None = None,
        corpus: Corpus | None = None,
    ) -> list[Neighbor]:
        """The ``k`` genes nearest to ``gene`` (itself excluded), optionally only among ``candidates``."""
        return self.query_genes([gene], k, candidates=candidates, corpus=corpus)[0]

    def query_genes(
        self,
        genes: Sequence[str | int],
        k: int = 10,
        *,
        candidates: Iterable[str | int] | None = None,
        corpus: Corpus | None = None,
    ) -> list[list[Neighbor]]:
        """Neighbours of each of several genes in one search, e.g. the trained perturbations (``candidates``)
        nearest to each unseen gene."""
        rows = [self.row_of(g, corpus) for g in names_of(genes, "genes")]
        return self.search(self.emb.vectors[rows], k, candidates=self._rows_of(candidates, corpus), exclude=rows)

    def embed_text(self, texts: Sequence[str], *, device: str | None = None) -> np.ndarray:
        """``(n, dim)`` post-processed vectors of free texts, embedded with the set's model and query prefix."""
        from scouter_local.embedding.encoder import Encoder
        from scouter_local.embedding.spec import spec_from_stored

        if self._encoder is None:
            self._encoder = Encoder(spec_from_stored(self.emb.spec, set_name=self.emb.name), device=device)
        return self.emb.postprocessor.transform(self._encoder.encode(list(texts), query=True))

    def query_text(
        self,
        text: str,
        k: int = 10,
        *,
        candidates: Iterable[str | int] | None = None,
        corpus: Corpus | None = None,
        device: str | None = None,
    ) -> list[Neighbor]:
        """The ``k`` genes whose documents are nearest to a free text."""
        return self.search(self.embed_text([text], device=device), k, candidates=self._rows_of(candidates, corpus))[0]


def neighbors(
    db_path: str | os.PathLike,
    set_name: str,
    *,
    gene: str | None = None,
    text: str | None = None,
    k: int = 10,
    candidates: Iterable[str] | None = None,
    kind: str = "auto",
    device: str | None = None,
) -> list[Neighbor]:
    """What ``scouter-local neighbors`` prints: neighbours of one gene (resolved through the corpus) or a text."""
    if (gene is None) == (text is None):
        raise InputError("give either a `gene` or a `text`, not both or neither")
    if text is not None and not text.strip():
        raise InputError("`text` is empty; describe what to look for, e.g. text='erythroid transcription factor'")
    nn = NeighborIndex.open(db_path, set_name, kind=kind)
    with Corpus.open(db_path, read_only=True) as corpus:
        if gene is not None:
            return nn.query_gene(gene, k, candidates=candidates, corpus=corpus)
        return nn.query_text(text, k, candidates=candidates, corpus=corpus, device=device)
