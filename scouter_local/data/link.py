"""Genes → embedding rows: the one bridge from the data to the corpus and the embedding sets (perturbed genes
resolved through the corpus: old symbols, aliases, Ensembl ids).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import anndata as ad
import numpy as np

from gene_corpus.errors import InputError
from gene_corpus.gene_lists import name_some
from scouter_local.conditions import CTRL, condition_of, genes_in, genes_of
from scouter_local.data.de import perturbed_gene_indices
from scouter_local.data.options import DataOptions
from scouter_local.data.perturbation import PerturbationData
from scouter_local.data.read import map_each, perturbation_data, read_perturbation_data
from scouter_local.embedding.sets import EmbeddingSet


class Resolution(Protocol):
    query: str
    entrez_id: int | None
    symbol: str | None
    how: str
    candidates: list


Resolver = Callable[[list[str]], list[Resolution]]


#: How to give a left-out gene a vector, by how the set was made.
_KEEP_HINT = {
    "embed": "embed its genes into set {set!r}, after importing a text for genes that have none: see scouter-local "
    "corpus show GENE",
    "import": "add its genes to the file imported as set {set!r} and import it again",
    "go": "import GO annotations of its genes (gene2go) and build set {set!r} again with scouter-local embeddings go",
    "combine": "give its genes a vector in every set combined into set {set!r}, then combine them again",
}


def _keep_hint(embeddings: EmbeddingSet) -> str:
    return _KEEP_HINT.get(embeddings.spec.get("source"), _KEEP_HINT["embed"]).format(set=embeddings.name)


def resolve_genes(data: PerturbationData, embeddings: EmbeddingSet, resolve: Resolver) -> PerturbationData:
    """Map each perturbed gene to a row of ``embeddings`` and respell conditions with current symbols.

    Each gene goes through ``resolve`` (the corpus resolver); its row is found by Entrez id, then by current
    symbol, then by the symbol as written. Conditions with a gene that has no row are left out, listed in
    ``excluded`` with the reason, and announced with a warning.

    Parameters
    ----------
    data
        Data read by :func:`perturbation_data`.
    embeddings
        The embedding set the model will use.
    resolve
        ``Corpus.resolve``: list of symbols/ids → resolutions with ``entrez_id``, ``symbol``, ``how``.

    Returns
    -------
    A new :class:`PerturbationData` whose ``gene_rows`` maps current symbol → embedding row.
    """
    tokens = genes_in(data.perturbations)
    by_entrez = {int(e): i for i, e in enumerate(embeddings.entrez_ids) if int(e) >= 0}
    by_symbol = embeddings.rows()
    canonical: dict[str, str] = {}
    gene_rows: dict[str, int] = {}
    missing: dict[str, str] = {}
    for token, res in zip(tokens, resolve(tokens)):
        row = None
        symbol = res.symbol if res.how not in ("unknown", "ambiguous") and res.symbol else token
        if res.how not in ("unknown", "ambiguous") and res.entrez_id is not None:
            row = by_entrez.get(int(res.entrez_id))
        if row is None:
            row = by_symbol.get(symbol, by_symbol.get(token))
        if row is None:
            if res.how == "unknown":
                missing[token] = f"gene {token} unknown to the corpus"
            elif res.how == "ambiguous":
                cands = ", ".join(str(c) for c in (res.candidates or [])[:5])
                missing[token] = f"gene {token} is ambiguous in the corpus ({cands})"
            else:
                named = token if symbol == token else f"{token} (now {symbol})"
                missing[token] = f"gene {named} has no embedding in set {embeddings.name!r}"
            continue
        canonical[token] = symbol
        gene_rows[symbol] = row

    excluded = dict(data.excluded)
    rename: dict[str, str] = {CTRL: CTRL}
    for c in data.perturbations:
        genes = genes_of(c)
        lost = [missing[g] for g in genes if g in missing]
        if lost:
            excluded[c] = "; ".join(lost)
            continue
        new = [canonical[g] for g in genes]
        rename[c] = condition_of(new)
    dropped = [c for c in data.perturbations if c not in rename]
    if dropped:
        warnings.warn(
            f"{len(dropped)} condition(s) left out: {name_some([f'{c}: {excluded[c]}' for c in dropped])} "
            f"(all are listed under 'excluded' in the model manifest and the evaluate JSON; to keep a "
            f"condition, {_keep_hint(embeddings)})",
            stacklevel=2,
        )
    if len(set(rename.values())) < len(rename):
        seen: dict[str, str] = {}
        for old, new in rename.items():
            if new in seen:
                raise InputError(f"conditions {seen[new]!r} and {old!r} name the same genes ({new}); merge them first")
            seen[new] = old
    if len(rename) == 1:
        raise InputError(
            f"no condition of {data.source.get('path', 'the data')} has all its genes in set {embeddings.name!r}"
        )

    keep = np.isin(data.conditions, list(rename))
    conditions = map_each(data.conditions[keep], rename.__getitem__)
    de = {}
    for old, new in rename.items():
        if old == CTRL:
            continue
        extra = perturbed_gene_indices(new, data.genes)
        de[new] = data.de_genes[old][~np.isin(data.de_genes[old], extra)]
    nonzero = {rename[k]: v for k, v in data.nonzero_genes.items() if k in rename}
    noise = {rename[k]: v for k, v in data.noise.items() if k in rename}
    return replace(
        data,
        rows=data.rows[keep],
        conditions=conditions,
        stats=data.stats.renamed(rename),
        de_genes=de,
        nonzero_genes=nonzero,
        excluded=excluded,
        gene_rows=gene_rows,
        noise=noise,
    )


def load_embeddings(db: str | os.PathLike, set_name: str) -> EmbeddingSet:
    """The embedding set ``set_name`` stored in the corpus database ``db``."""
    from scouter_local.embedding.store import load_embedding_set

    if not Path(db).exists():
        raise InputError(f"db={str(db)!r}: no such database; build it with scouter-local corpus import")
    return load_embedding_set(db, set_name)


def prepare_data(
    source: ad.AnnData | str | os.PathLike,
    options: DataOptions,
    db: str | os.PathLike,
    embeddings: EmbeddingSet,
    *,
    backed: bool | None = None,
) -> PerturbationData:
    """Read a screen (an AnnData in memory, or an h5ad file: see :func:`perturbation_data`) and resolve its
    perturbed genes through the corpus in ``db`` onto ``embeddings``; ``db`` is recorded in ``source``."""
    from gene_corpus.corpus import Corpus

    if isinstance(source, ad.AnnData):
        data = perturbation_data(source, options)
    else:
        data = read_perturbation_data(source, options, backed=backed)
    data.source["db"] = str(Path(db).resolve())
    with Corpus.open(db, read_only=True) as corpus:
        return resolve_genes(data, embeddings, corpus.resolve)


def condition_rows(condition: str, gene_rows: Mapping[str, int], embeddings: EmbeddingSet) -> list[int]:
    """Embedding rows of the genes of ``condition``: from ``gene_rows`` (the resolver's map), else by symbol.

    A gene without a row is an :class:`InputError` that says how to get one.
    """
    rows, by_symbol = [], None
    for g in genes_of(condition):
        row = gene_rows.get(g)
        if row is None:
            by_symbol = by_symbol or embeddings.rows()
            row = by_symbol.get(g)
        if row is None:
            raise InputError(
                f"gene {g} (condition {condition!r}) has no embedding in set {embeddings.name!r}; "
                "resolve it to a current symbol (scouter-local corpus resolve) or embed it first"
            )
        rows.append(int(row))
    if not rows:
        raise InputError(f"condition {condition!r} names no gene; expected 'A+ctrl' or 'A+B'")
    return rows


def condition_vectors(conditions: Sequence[str], gene_rows: Mapping[str, int], embeddings: EmbeddingSet) -> np.ndarray:
    """``(n_conditions, dim)`` float32 sum of each condition's genes' embeddings (rows by :func:`condition_rows`)."""
    vectors = embeddings.vectors
    return np.stack([vectors[condition_rows(c, gene_rows, embeddings)].sum(axis=0) for c in conditions]).astype(
        np.float32
    )
