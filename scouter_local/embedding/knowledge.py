"""Embedding sets made from knowledge other than a text model: GO annotations, and combinations of sets.

Both are ordinary embedding sets (same tables, fingerprint, cache rule and loader as ``embed``), so every command
that takes ``--set`` uses them.

GO set (:func:`go_embedding_set`)
    The corpus's GO annotations (evidence other than ND) of the chosen ontologies, each gene's terms propagated
    to all their ancestors over ``is_a`` and ``part_of`` edges (``go_parents``), the root terms and "protein
    binding" dropped (they say nothing about a gene), weighted by TF-IDF (scikit-learn, smooth idf, rows
    L2-normalised), reduced by a seeded truncated SVD (latent semantic analysis) and L2-normalised again.
    One row per gene with at least one annotation. GEARS's knowledge, without its graph.
Combined set (:func:`combine_sets`)
    The rows of each part L2-normalised, then concatenated (so the cosine of two combined vectors is the mean of
    the parts' cosines); only genes present in every part.

The set is recomputed whole when its inputs change (new GO annotations, a re-embedded part) and written in one
transaction; the same command on unchanged inputs computes nothing.

"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Sequence

import numpy as np
import pandas as pd

from gene_corpus import Corpus
from gene_corpus.documents import GO_UNINFORMATIVE
from gene_corpus.errors import InputError
from scouter_local.embedding.sets import EmbeddingSet, unit_rows
from scouter_local.embedding.store import (
    check_set_name,
    check_set_source,
    content_key,
    load_embedding_set,
    set_row,
    vectors_table,
    write_whole_set,
)

#: Ontologies of a GO set by default: all three (see the README for the neighbour quality of BP alone).
GO_ONTOLOGIES = ("BP", "MF", "CC")


#: ``go_parents.relationship_type`` values along which terms are propagated to their ancestors.
GO_RELATIONS = ("isa", "part of")


GO_MAX_DIM = 256


#: Version of the GO recipe; part of the set's identity so that a changed recipe is not served from the cache.
_GO_RECIPE = 1


@dataclasses.dataclass
class KnowledgeSetReport:
    """What :func:`go_embedding_set` or :func:`combine_sets` did.

    Attributes
    ----------
    set_name, source
        The set and its kind (``go`` or ``combine``).
    genes, dim
        Rows and vector size of the set.
    computed
        ``False`` when the set was already there with the same inputs and parameters (nothing computed).
    fingerprint
        The set's fingerprint.
    seconds
        Wall time.
    terms, explained_variance
        GO sets: distinct terms after propagation, and the share of the TF-IDF matrix's variance the SVD keeps.
    dropped
        Combined sets: per part, its genes left out because another part lacks them.
    """

    set_name: str
    source: str
    genes: int
    dim: int
    computed: bool
    fingerprint: str
    seconds: float = 0.0
    terms: int | None = None
    explained_variance: float | None = None
    dropped: dict[str, int] | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _cached(row: dict | None, raw_key: str) -> bool:
    return row is not None and row["raw_key"] == raw_key and row["fingerprint"] is not None


def _report_from_row(row: dict, began: float) -> KnowledgeSetReport:
    spec = json.loads(row["spec"])
    return KnowledgeSetReport(
        row["name"],
        spec["source"],
        computed=False,
        fingerprint=row["fingerprint"],
        dim=row["dim"],
        seconds=round(time.perf_counter() - began, 2),
        **spec["stats"],
    )


def _write_set(
    corpus: Corpus,
    set_name: str,
    ids: np.ndarray,
    symbols: Sequence[str],
    vectors: np.ndarray,
    raw_key: str,
    spec: dict,
    began: float,
) -> KnowledgeSetReport:
    """Store ``vectors`` (genes × dim, rows in ``ids`` order) as the whole set in one transaction; its report."""
    table = vectors_table(ids, list(symbols), [None] * len(ids), vectors)
    fingerprint = write_whole_set(corpus.con, set_name, raw_key=raw_key, spec=spec, table=table)
    return KnowledgeSetReport(
        set_name,
        spec["source"],
        dim=int(vectors.shape[1]),
        computed=True,
        fingerprint=fingerprint,
        seconds=round(time.perf_counter() - began, 2),
        **spec["stats"],
    )


def go_gene_terms(corpus: Corpus, ontologies: Sequence[str] = GO_ONTOLOGIES) -> pd.DataFrame:
    """Each annotated gene's GO terms with all their ancestors.

    Parameters
    ----------
    corpus
        A corpus with the ``go`` files imported (annotations and ``go_parents``).
    ontologies
        Subset of ``BP``, ``MF``, ``CC``; ancestors outside them (rare ``part_of`` edges across ontologies) are
        not kept.

    Returns
    -------
    ``(n_pairs, 2)`` frame ``entrez_id, go_id`` of distinct pairs, sorted, without the terms of
    :data:`gene_corpus.documents.GO_UNINFORMATIVE`.
    """
    return (
        corpus.con.execute(
            """
        WITH RECURSIVE
        direct AS (SELECT DISTINCT entrez_id, go_id FROM go_annotations
                   WHERE evidence <> 'ND' AND list_contains($ontologies, ontology)),
        edges AS (SELECT DISTINCT child, parent FROM go_parents WHERE list_contains($relations, relationship_type)),
        closure(go_id, ancestor) AS (
            SELECT DISTINCT go_id, go_id FROM direct
            UNION
            SELECT c.go_id, e.parent FROM closure c JOIN edges e ON e.child = c.ancestor)
        SELECT DISTINCT d.entrez_id, c.ancestor AS go_id
        FROM direct d JOIN closure c USING (go_id) LEFT JOIN go_terms t ON t.go_id = c.ancestor
        WHERE (c.ancestor = d.go_id OR t.ontology IS NULL OR list_contains($ontologies, t.ontology))
          AND NOT list_contains($uninformative, c.ancestor)
        ORDER BY entrez_id, go_id
        """,
            {"ontologies": list(ontologies), "relations": list(GO_RELATIONS), "uninformative": list(GO_UNINFORMATIVE)},
        )
        .df()
        .astype({"entrez_id": "int64"})
    )


def go_vectors(pairs: pd.DataFrame, dim: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """TF-IDF of the gene × term matrix, reduced by truncated SVD.

    Parameters
    ----------
    pairs
        From :func:`go_gene_terms`.
    dim
        Components kept (at most ``min(n_genes, n_terms) - 1``).
    seed
        Seed of the randomised SVD.

    Returns
    -------
    ``(entrez ids (n_genes,) int64, vectors (n_genes, dim') float32 with unit rows, explained variance share)``.
    """
    from scipy import sparse
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.preprocessing import normalize

    genes = pd.Categorical(pairs["entrez_id"])
    terms = pd.Categorical(pairs["go_id"])
    counts = sparse.csr_matrix(
        (np.ones(len(pairs), np.float32), (genes.codes, terms.codes)),
        shape=(len(genes.categories), len(terms.categories)),
    )
    weighted = TfidfTransformer(norm="l2", smooth_idf=True).fit_transform(counts)
    k = min(dim, min(weighted.shape) - 1)
    if k < 2:
        raise InputError(
            f"GO annotations give only {weighted.shape[0]} genes x {weighted.shape[1]} terms; "
            "import the go folder (gene2go, terms, parents) into the corpus first"
        )
    svd = TruncatedSVD(n_components=k, random_state=seed)
    vectors = normalize(svd.fit_transform(weighted)).astype(np.float32)
    return genes.categories.to_numpy(np.int64), vectors, float(svd.explained_variance_ratio_.sum())


def go_embedding_set(
    db_path: str | os.PathLike,
    set_name: str,
    *,
    dim: int = GO_MAX_DIM,
    ontologies: Sequence[str] = GO_ONTOLOGIES,
    seed: int = 0,
    progress: bool = True,
) -> KnowledgeSetReport:
    """Make (or find cached) an embedding set from the corpus's GO annotations (see the module notes).

    Parameters
    ----------
    db_path
        Corpus database with the ``go`` files imported; the set is stored in it.
    set_name
        Name of the set. A set keeps the ``dim``/``ontologies``/``seed`` it was made with (others need another
        name); changed annotations recompute it.
    dim
        At most this many dimensions (2 to :data:`GO_MAX_DIM`).
    ontologies
        GO ontologies used (``BP``, ``MF``, ``CC``).
    seed
        Seed of the truncated SVD.
    progress
        Show a tqdm bar over the steps.

    Returns
    -------
    :class:`KnowledgeSetReport`.

    Raises
    ------
    InputError
        Bad name, dimension or ontology, a corpus without GO annotations, or the name taken by another set.
    """
    began = time.perf_counter()
    check_set_name(set_name)
    params = _go_params(dim, ontologies, seed)
    from tqdm.auto import tqdm

    with (
        Corpus.open(db_path, read_only=False) as corpus,
        tqdm(total=4, unit="step", desc=f"GO set {set_name}", disable=not progress) as bar,
    ):
        row = set_row(corpus.con, set_name)
        check_set_source(row, set_name, "go", "make the GO set")
        _check_go_params(row, set_name, params)
        pairs = _go_pairs(corpus, params["ontologies"])
        bar.update()
        inputs = content_key(pd.util.hash_pandas_object(pairs, index=False).to_numpy().tobytes())
        raw_key = content_key({"go": params, "inputs": inputs})
        if _cached(row, raw_key):
            bar.update(3)
            return _report_from_row(row, began)
        ids, vectors, explained = go_vectors(pairs, dim, seed=seed)
        bar.update(2)
        symbols = corpus.gene_info(ids.tolist()).set_index("entrez_id")["symbol"].reindex(ids).fillna("").astype(str)
        stats = {"genes": len(ids), "terms": int(pairs["go_id"].nunique()), "explained_variance": round(explained, 4)}
        spec = {
            "source": "go",
            "made_from": f"GO {'+'.join(params['ontologies'])} (TF-IDF, SVD {vectors.shape[1]})",
            "go": params,
            "inputs_sha256": inputs,
            "postprocess": "none",
            "stats": stats,
        }
        report = _write_set(corpus, set_name, ids, symbols, vectors, raw_key, spec, began)
        bar.update()
    return report


def _go_params(dim: int, ontologies: Sequence[str], seed: int) -> dict:
    """What defines a GO set besides its inputs (checked): ontologies in BP, MF, CC order, dimension, seed, recipe."""
    if not 2 <= dim <= GO_MAX_DIM:
        raise InputError(f"GO set dimension {dim} is out of range; use 2 to {GO_MAX_DIM}")
    ontologies = (
        sorted(set(ontologies), key=("BP", "MF", "CC").index) if set(ontologies) <= {"BP", "MF", "CC"} else None
    )
    if not ontologies:
        raise InputError("GO ontologies must be a non-empty subset of BP, MF, CC (e.g. BP,MF,CC)")
    return {
        "ontologies": ontologies,
        "relations": list(GO_RELATIONS),
        "excluded_terms": list(GO_UNINFORMATIVE),
        "dim": dim,
        "seed": seed,
        "weighting": "tfidf smooth-idf l2",
        "reduction": "truncated_svd l2",
        "recipe": _GO_RECIPE,
    }


def _check_go_params(row: dict | None, set_name: str, params: dict) -> None:
    """A GO set made with other parameters is an :class:`InputError` naming each change."""
    if row is None:
        return
    old = json.loads(row["spec"])["go"]
    if old != params:
        changed = "; ".join(f"{k} {old.get(k)!r} -> {v!r}" for k, v in params.items() if old.get(k) != v)
        raise InputError(f"set {set_name!r} was made with other settings ({changed}); use another `set_name`")


def _go_pairs(corpus: Corpus, ontologies: Sequence[str]) -> pd.DataFrame:
    """:func:`go_gene_terms`; a corpus without annotations of ``ontologies`` is an :class:`InputError`."""
    pairs = go_gene_terms(corpus, ontologies)
    if pairs.empty:
        raise InputError(
            f"{corpus.path} holds no GO annotations of {', '.join(ontologies)}; import the go folder "
            "first: scouter-local corpus import --db DB ../shared/data/go"
        )
    return pairs


def combine_sets(db_path: str | os.PathLike, set_names: Sequence[str], set_name: str) -> KnowledgeSetReport:
    """Store the concatenation of two or more sets' L2-normalised rows as a new set, on the genes all hold.

    Parameters
    ----------
    db_path
        Corpus database holding the parts; the new set is stored in it.
    set_names
        The parts, in block order (their post-processed vectors are used).
    set_name
        The new set (refused if it names one of the parts or a set of another kind).

    Returns
    -------
    :class:`KnowledgeSetReport` whose ``dropped`` counts, per part, the genes only some parts hold (and genes
    without an Entrez id, which cannot be matched across sets).

    Raises
    ------
    InputError
        Fewer than two distinct parts, an unknown part (one line naming it and the sets there), parts without a
        common gene, or a set name made from other parts.
    """
    began = time.perf_counter()
    check_set_name(set_name)
    set_names = _check_parts(set_names, set_name)
    with Corpus.open(db_path, read_only=False) as corpus:
        parts = [load_embedding_set(corpus, name) for name in set_names]
        raw_key = content_key({"combine": [[p.name, p.fingerprint] for p in parts]})
        row = set_row(corpus.con, set_name)
        check_set_source(row, set_name, "combine", "combine")
        if row is not None and [p["name"] for p in json.loads(row["spec"])["parts"]] != set_names:
            made = "+".join(p["name"] for p in json.loads(row["spec"])["parts"])
            raise InputError(f"set {set_name!r} combines {made}, not {'+'.join(set_names)}; use another `set_name`")
        if _cached(row, raw_key):
            return _report_from_row(row, began)
        common, symbols, vectors = _concatenate(parts)
        stats = {"genes": len(common), "dropped": {p.name: len(p.entrez_ids) - len(common) for p in parts}}
        spec = {
            "source": "combine",
            "made_from": " + ".join(set_names),
            "normalise": "l2 per part",
            "parts": [
                {"name": p.name, "fingerprint": p.fingerprint, "dim": p.dim, "genes": len(p.entrez_ids)} for p in parts
            ],
            "postprocess": "none",
            "stats": stats,
        }
        return _write_set(corpus, set_name, common, symbols, vectors, raw_key, spec, began)


def _check_parts(set_names: Sequence[str], set_name: str) -> list[str]:
    """The parts' names, stripped; fewer than two distinct parts, or ``set_name`` among them, is an
    :class:`InputError`."""
    set_names = [n.strip() for n in set_names if n.strip()]
    if len(set_names) < 2 or len(set(set_names)) < len(set_names):
        raise InputError(
            f"combine needs two or more different sets, got {','.join(set_names) or 'none'} (e.g. set_names=minilm,go)"
        )
    if set_name in set_names:
        raise InputError(f"set {set_name!r} is one of the parts; name the combined set differently")
    return set_names


def _concatenate(parts: Sequence[EmbeddingSet]) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The genes every part holds ``(n,)`` (by Entrez id), their symbols in the first part, and the parts' unit
    rows side by side ``(n, sum of dims)`` float32."""
    common = parts[0].entrez_ids[parts[0].entrez_ids >= 0]
    for part in parts[1:]:
        common = np.intersect1d(common, part.entrez_ids)
    if not len(common):
        raise InputError(f"sets {', '.join(p.name for p in parts)} share no gene (by Entrez id); nothing to combine")
    blocks = []
    for part in parts:
        rows = pd.Series(np.arange(len(part.entrez_ids)), index=part.entrez_ids)[common].to_numpy()
        blocks.append(unit_rows(part.vectors[rows], np.float64))
    symbols = pd.Series(parts[0].symbols, index=parts[0].entrez_ids)[common].tolist()
    return common, symbols, np.hstack(blocks).astype(np.float32)
