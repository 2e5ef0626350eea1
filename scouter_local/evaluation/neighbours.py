"""Neighbour quality of an embedding set: how often nearest genes share a GO term."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scouter_local.embedding.sets import unit_rows

if TYPE_CHECKING:
    from scouter_local.embedding.sets import EmbeddingSet


def go_neighbor_quality(
    emb: EmbeddingSet,
    annotations: pd.DataFrame,
    *,
    k: int = 10,
    entrez_ids: Iterable[int] | None = None,
    n_random: int = 20000,
    seed: int = 0,
) -> dict:
    """How often a gene's nearest neighbours share a GO term with it, against random genes.

    Parameters
    ----------
    emb
        The embedding set.
    annotations
        ``entrez_id, go_id`` rows (e.g. ``Corpus.go_annotations("BP")`` without uninformative terms); only genes
        annotated here count, both as queries and as neighbours.
    k
        Neighbours per gene (flat FAISS inner-product index on the normalised vectors).
    entrez_ids
        Restrict to these genes (e.g. the genes every compared set holds); default all genes of the set.
    n_random
        Random gene pairs drawn for the chance level.

    Returns
    -------
    ``{"genes": N, "k": k, "share_go_bp": x, "random_share_go_bp": y, "enrichment": x / y}``; the shares are
    ``None`` when fewer than ``k + 1`` genes are annotated.
    """
    import faiss

    terms = annotations.groupby("entrez_id")["go_id"].apply(frozenset).to_dict()
    wanted = None if entrez_ids is None else {int(e) for e in entrez_ids}
    rows = [i for i, e in enumerate(emb.entrez_ids) if int(e) in terms and (wanted is None or int(e) in wanted)]
    result = {"genes": len(rows), "k": k, "share_go_bp": None, "random_share_go_bp": None, "enrichment": None}
    if len(rows) <= k:
        return result
    ids = [int(emb.entrez_ids[r]) for r in rows]
    x = unit_rows(emb.vectors[rows])
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    _, hits = index.search(x, k + 1)
    shared = [bool(terms[ids[i]] & terms[ids[j]]) for i, row in enumerate(hits) for j in row if j != i and j >= 0]
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(ids), n_random), rng.integers(0, len(ids), n_random)
    keep = a != b
    random_share = float(np.mean([bool(terms[ids[i]] & terms[ids[j]]) for i, j in zip(a[keep], b[keep])]))
    share = float(np.mean(shared))
    result.update(
        share_go_bp=round(share, 4),
        random_share_go_bp=round(random_share, 4),
        enrichment=round(share / random_share, 3) if random_share else None,
    )
    return result
