"""Why a prediction: the trained perturbations nearest to a queried one in the embedding space.

A predictor that reads gene embeddings (Scouter, ``knn``, ``ridge``) sees a condition as the sum of its genes'
vectors; an unseen perturbation is predicted from what training showed for perturbations near it in that space.
:func:`explain` lists, for each queried condition,

* the trained conditions nearest to it (cosine of the summed gene embeddings, searched with a FAISS inner-product
  index over the normalised trained condition vectors), and
* for each of its genes, the genes of the training conditions nearest to it (cosine of the gene vectors,
  :class:`~scouter_local.index.NeighborIndex` restricted to the trained genes).

Predictors that keep a per-gene source of their estimate (``gene_delta``'s ``gene_source_``) add it per gene.

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from gene_corpus.errors import InputError
from scouter_local.conditions import genes_of
from scouter_local.data.link import condition_rows
from scouter_local.data.splits import subgroup
from scouter_local.embedding.sets import EmbeddingSet, unit_rows
from scouter_local.index import Neighbor, NeighborIndex

#: Trained neighbours listed per condition and per gene by default.
DEFAULT_K = 5


@dataclass(frozen=True)
class TrainedNeighbor:
    """A trained condition near the queried one: ``rank`` (1-based), ``condition`` and ``cosine``."""

    rank: int
    condition: str
    cosine: float


@dataclass(frozen=True)
class Explanation:
    """What training offered a predictor for one condition.

    Attributes
    ----------
    condition
        The queried condition (``A+ctrl`` or ``A+B``, current symbols).
    subgroup
        ``single``, ``single_seen`` or ``combo_seen0/1/2`` relative to the training conditions.
    trained
        Whether the condition itself was a training condition (it is then left out of ``nearest``).
    nearest
        Trained conditions nearest to it, most similar first.
    genes
        Gene of the condition → the trained genes nearest to it (the gene itself left out).
    gene_sources
        Gene → where the predictor's estimate for it came from (``single``, ``combination``, ``neighbours``,
        ``prior``); empty when the predictor keeps no such record.
    gene_weights
        Gene estimated from ``neighbours`` → the trained genes it borrows from and their weights, heaviest first.
    """

    condition: str
    subgroup: str
    trained: bool
    nearest: list[TrainedNeighbor]
    genes: dict[str, list[Neighbor]]
    gene_sources: dict[str, str] = field(default_factory=dict)
    gene_weights: dict[str, list[tuple[str, float]]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict (neighbours as ``{rank, condition|symbol, …, cosine}``)."""
        return asdict(self)


def explain(
    conditions: Sequence[str],
    embeddings: EmbeddingSet,
    train_conditions: Sequence[str],
    gene_rows: Mapping[str, int],
    *,
    k: int = DEFAULT_K,
    evidence: Mapping[str, Mapping] | None = None,
) -> list[Explanation]:
    """Nearest trained conditions and trained genes of each queried condition.

    Parameters
    ----------
    conditions
        Conditions to explain (``A+ctrl`` / ``A+B``, current symbols).
    embeddings
        The embedding set the predictor reads.
    train_conditions
        The predictor's training conditions.
    gene_rows
        Current symbol → row of ``embeddings`` (``PerturbationData.gene_rows`` or ``Predictor.gene_rows_``);
        genes missing here are looked up by symbol.
    k
        Neighbours per condition and per gene.
    evidence
        Optional gene → ``{"source", "neighbours": [(gene, weight), …]}`` of the predictor's per-gene estimate
        (``GeneDeltaPredictor.evidence``).

    Returns
    -------
    One :class:`Explanation` per condition, in order.

    Raises
    ------
    InputError
        ``k < 1``, no training condition, or a gene without an embedding row.
    """
    import faiss

    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    train_conditions = list(dict.fromkeys(train_conditions))
    if not train_conditions:
        raise InputError("no training condition to explain predictions with")
    vectors = embeddings.vectors
    train_rows = [condition_rows(c, gene_rows, embeddings) for c in train_conditions]
    trained = unit_rows(np.stack([vectors[r].sum(axis=0) for r in train_rows]))
    index = faiss.IndexFlatIP(trained.shape[1])
    index.add(trained)
    query_rows = [condition_rows(c, gene_rows, embeddings) for c in conditions]
    if not query_rows:
        return []
    queries = unit_rows(np.stack([vectors[r].sum(axis=0) for r in query_rows]))
    scores, hits = index.search(queries, min(k + 1, index.ntotal))

    gene_index = NeighborIndex.build(embeddings, kind="flat")
    candidates = np.unique([r for rows in train_rows for r in rows])
    genes = list(dict.fromkeys(g for c in conditions for g in genes_of(c)))
    rows_of = {g: r for c, rows in zip(conditions, query_rows) for g, r in zip(genes_of(c), rows)}
    near_genes = dict(
        zip(
            genes,
            gene_index.search(
                vectors[[rows_of[g] for g in genes]], k, candidates=candidates, exclude=[rows_of[g] for g in genes]
            ),
        )
    )
    train_set = set(train_conditions)
    out = []
    for c, score_row, hit_row in zip(conditions, scores, hits):
        found = [(train_conditions[h], float(s)) for h, s in zip(hit_row, score_row) if h >= 0]
        found = [(t, s) for t, s in found if t != c][:k]
        out.append(
            Explanation(
                condition=c,
                subgroup=subgroup(c, train_conditions),
                trained=c in train_set,
                nearest=[TrainedNeighbor(i, t, round(s, 6)) for i, (t, s) in enumerate(found, 1)],
                genes={g: near_genes[g] for g in genes_of(c)},
                gene_sources={g: evidence[g]["source"] for g in genes_of(c)} if evidence is not None else {},
                gene_weights={
                    g: list(evidence[g]["neighbours"])
                    for g in genes_of(c)
                    if evidence is not None and evidence[g]["neighbours"]
                },
            )
        )
    return out


def explain_predictor(predictor, conditions: Sequence[str], *, k: int = DEFAULT_K) -> list[Explanation]:
    """:func:`explain` for a fitted :class:`~scouter_local.predictors.base.Predictor` (its embeddings, training
    conditions, gene rows and, where it keeps one, the evidence of its per-gene estimates)."""
    predictor._check_fitted()
    evidence = (
        predictor.evidence([g for c in conditions for g in genes_of(c)]) if hasattr(predictor, "evidence") else None
    )
    return explain(
        conditions, predictor.embeddings_, predictor.train_conditions_, predictor.gene_rows_, k=k, evidence=evidence
    )


def format_explanations(explanations: Sequence[Explanation], *, k: int = 3) -> str:
    """Text for the terminal: per condition its nearest trained conditions and, per gene, nearest trained genes.

    Example line: ``IER5L+ctrl (single): nearest trained KLF1+ctrl 0.512, SET+ctrl 0.498; IER5L → KLF1 0.48``.
    """
    lines = []
    for e in explanations:
        status = "trained" if e.trained else e.subgroup
        near = ", ".join(f"{n.condition} {n.cosine:.3f}" for n in e.nearest[:k]) or "-"
        lines.append(f"{e.condition} ({status}): nearest trained perturbations {near}")
        for gene, neighbours in e.genes.items():
            weights = ", ".join(f"{g} {w:.2f}" for g, w in e.gene_weights.get(gene, [])[:k])
            source = (
                f" [estimate from {e.gene_sources[gene]}{': ' + weights if weights else ''}]"
                if gene in e.gene_sources
                else ""
            )
            lines.append(
                f"    {gene}{source}: nearest trained genes "
                + (", ".join(f"{n.symbol} {n.cosine:.3f}" for n in neighbours[:k]) or "-")
            )
    return "\n".join(lines)
