"""``rank``: the genes a screen did not measure, ordered by the calibrated probability that perturbing them has a
detectable effect, each with the measured genes nearest to it as the explanation.

The candidates are every gene of the model's embedding set outside its training data (or every gene, or a list
resolved through the corpus). Each gets the effect model's probability (``p_effect``), its predicted strength,
the well-studied baseline's probability, and its :data:`N_EXPLAINING` nearest training genes (cosine of the gene
vectors) with their measured label and strength. Scoring is vectorised: the model is linear (or a neighbour
vote) and neighbours are found in chunks, so ranking 20,000 embedded genes takes seconds. A gene that cannot be
ranked (unknown to the corpus, ambiguous, or without a vector) is listed with its reason, never dropped.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gene_corpus.errors import InputError
from gene_corpus.files import atomic_path
from gene_corpus.gene_lists import name_some
from scouter_local.conditions import condition_of
from scouter_local.embedding.sets import EmbeddingSet
from scouter_local.index import NeighborIndex

if TYPE_CHECKING:
    from scouter_local.predictors.base import Predictor
    from scouter_local.predictors.effect import EffectPart

#: Measured (training) genes listed as the explanation of each ranked gene.
N_EXPLAINING = 5
#: Columns of :func:`rank`'s frame.
RANK_COLUMNS = ("rank", "gene", "symbol", "entrez_id", "p_effect", "strength", "well_studied", "neighbours", "reason")
#: Genes whose neighbours are searched at once (bounds the genes × training genes similarity block).
_CHUNK = 2048


def rank(
    model: Predictor | str | os.PathLike,
    genes: Sequence[str] | None = None,
    *,
    all_genes: bool = False,
    top: int | None = None,
    db: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Genes ranked by the calibrated probability that perturbing them has a detectable effect.

    Parameters
    ----------
    model
        A fitted predictor with an effect part, or its model folder (see :func:`~scouter_local.predictors.
        training.train`).
    genes
        The candidates: symbols, aliases or ids resolved through the corpus (unknown, ambiguous or unembedded
        ones are listed with their reason and named in a warning). Default: every gene of the model's embedding
        set that is not in its training data (train and val conditions).
    all_genes
        Every gene of the embedding set, measured ones included.
    top
        Keep only the ``top`` most likely genes (the genes that cannot be ranked are always listed).
    db
        Corpus database (default: the one recorded at training): resolves ``genes`` and gives the well-studied
        features.

    Returns
    -------
    One row per candidate, ranked ones first by ``rank``: ``rank`` (1 = most likely; NaN where not ranked),
    ``gene`` (as given, or the symbol), ``symbol``, ``entrez_id``, ``p_effect``, ``strength`` (predicted, in the
    label's strength units), ``well_studied`` (the well-studied baseline's probability; NaN without corpus
    features), ``neighbours`` (the :data:`N_EXPLAINING` nearest training genes: ``{"symbol", "cosine", "label",
    "strength"}``, most similar first) and ``reason`` (why a gene is not ranked; ``None`` for ranked genes).

    Raises
    ------
    InputError
        The model has no effect part (the message says why), or both ``genes`` and ``all_genes`` are given.
    """
    from scouter_local.predictors.base import Predictor
    from scouter_local.predictors.checkpoint import load_model

    if genes is not None and all_genes:
        raise InputError("pass either `genes` or `all_genes`, not both")
    if top is not None and top < 1:
        raise InputError(f"top={top}: expected a number of genes, at least 1")
    predictor = model if isinstance(model, Predictor) else load_model(model, db=db)
    effect = _effect_of(predictor)
    db = db or predictor.data_source_.get("db")
    emb = predictor.embeddings_
    if genes is not None:
        rows, asked, not_ranked = _listed_rows(genes, emb, db)
    else:
        trained = [*predictor.split_.train, *predictor.split_.val]
        measured = set() if all_genes else {r for c in trained for r in predictor.embedding_rows(c)}
        rows = np.array([i for i in range(len(emb.symbols)) if i not in measured], dtype=np.int64)
        asked, not_ranked = [emb.symbols[i] for i in rows], []
    ranked = _ranked(effect, emb, rows, asked, db)
    if top is not None:
        ranked = ranked.iloc[:top]
    if not not_ranked:
        return ranked
    return pd.concat([ranked, pd.DataFrame(not_ranked, columns=list(RANK_COLUMNS))], ignore_index=True)


def _effect_of(predictor: Predictor) -> EffectPart:
    """The predictor's effect part, with a model; else an :class:`InputError` saying why there is none."""
    effect = getattr(predictor, "effect_", None)
    if effect is None:
        raise InputError(
            "the model has no effect part: it was trained without an effect label (a model folder from before "
            "effect models, or pseudo-bulk data without strong_key); train it again with strong_key=COLUMN "
            "strong_above=X, or on single cells"
        )
    effect.require()
    return effect


def _listed_rows(
    genes: Sequence[str], emb: EmbeddingSet, db: str | os.PathLike | None
) -> tuple[np.ndarray, list[str], list[dict]]:
    """``(rows, genes as given, not ranked)`` of a gene list resolved through the corpus onto ``emb``; one warning
    names the genes that cannot be ranked."""
    from gene_corpus.corpus import Corpus

    if db is None:
        raise InputError("the model records no corpus database to resolve `genes` with; pass db=DB")
    by_entrez = {int(e): i for i, e in enumerate(emb.entrez_ids) if int(e) >= 0}
    by_symbol = emb.rows()
    with Corpus.open(db, read_only=True) as corpus:
        resolved = corpus.resolve([str(g).strip() for g in genes])
    rows, asked, not_ranked = [], [], []
    for r in resolved:
        row = by_entrez.get(int(r.entrez_id)) if r.entrez_id is not None else None
        row = row if row is not None else by_symbol.get(r.symbol or r.query)
        if r.how in ("unknown", "ambiguous") and row is None:
            hint = f" ({', '.join(map(str, r.candidates[:5]))})" if r.candidates else ""
            reason = f"{r.how} in the corpus{hint}"
        elif row is None:
            reason = f"no embedding in set {emb.name!r}"
        else:
            rows.append(row)
            asked.append(r.query)
            continue
        not_ranked.append({"gene": r.query, "symbol": r.symbol, "entrez_id": r.entrez_id, "reason": reason})
    if not_ranked:
        warnings.warn(
            f"{len(not_ranked)} of {len(resolved)} genes cannot be ranked: "
            f"{name_some([n['gene'] + ' (' + n['reason'] + ')' for n in not_ranked])} (listed with their reason)",
            stacklevel=3,
        )
    return np.asarray(rows, dtype=np.int64), asked, not_ranked


def _ranked(
    effect: EffectPart, emb: EmbeddingSet, rows: np.ndarray, asked: list[str], db: str | os.PathLike | None
) -> pd.DataFrame:
    """The ranked rows of :func:`rank` for the genes at ``rows`` of ``emb``."""
    scores = effect.predict(rows, emb, db)
    frame = pd.DataFrame(
        {
            "gene": asked,
            "symbol": [emb.symbols[i] for i in rows],
            "entrez_id": [int(e) if e >= 0 else None for e in emb.entrez_ids[rows]],
            **{c: scores[c].to_numpy() for c in scores},
            "neighbours": _explanations(effect, emb, rows),
            "reason": None,
        }
    )
    order = np.lexsort((frame["symbol"].to_numpy(), -frame["strength"].fillna(0).to_numpy(), -frame["p_effect"]))
    frame = frame.iloc[order].reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1, dtype=np.float64))
    return frame[list(RANK_COLUMNS)]


def _explanations(effect: EffectPart, emb: EmbeddingSet, rows: np.ndarray) -> list[list[dict]]:
    """Per gene at ``rows``, its :data:`N_EXPLAINING` nearest training genes (itself left out) with their measured
    label and strength."""
    trained = np.asarray(effect.rows, dtype=np.int64)
    table = effect.label.table.loc[[condition_of([g]) for g in effect.genes]]
    measured = {
        emb.symbols[row]: {"label": label, "strength": strength}
        for row, label, strength in zip(trained, table["label"].astype(bool).tolist(), table["strength"].tolist())
    }
    index = NeighborIndex.build(emb, kind="flat")
    out: list[list[dict]] = []
    for start in range(0, len(rows), _CHUNK):
        part = rows[start : start + _CHUNK]
        for hits in index.search(emb.vectors[part], N_EXPLAINING, candidates=trained, exclude=list(part)):
            out.append([{"symbol": n.symbol, "cosine": n.cosine, **measured[n.symbol]} for n in hits])
    return out


def ranking_json(frame: pd.DataFrame) -> dict:
    """``rank --json``: ``{"ranked": [{"rank", "symbol", "entrez_id", "p_effect", "strength", "well_studied",
    "neighbours": [{"symbol", "cosine", "label", "strength"}, …]}, …], "not_ranked": [{"gene", "reason"}, …]}``
    (missing numbers as ``null``)."""
    listed = frame["reason"].notna()
    keys = ("symbol", "entrez_id", "p_effect", "strength", "well_studied", "neighbours")
    return {
        "ranked": [
            {"rank": int(row["rank"]), **{k: _plain(row[k]) for k in keys}} for row in frame[~listed].to_dict("records")
        ],
        "not_ranked": [{"gene": row["gene"], "reason": row["reason"]} for row in frame[listed].to_dict("records")],
    }


def _plain(value):
    """A frame value as JSON: lists kept, NaN as ``None``, NumPy scalars as Python ones."""
    if isinstance(value, list):
        return value
    if value is None or pd.isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _neighbour_text(neighbours) -> str:
    """``SYMBOL cosine effect|none strength; …`` (empty for a gene that was not ranked)."""
    if not isinstance(neighbours, list):
        return ""
    return "; ".join(
        f"{n['symbol']} {n['cosine']:.3f} {'effect' if n['label'] else 'none'} {n['strength']:.3g}" for n in neighbours
    )


def write_ranking(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write :func:`rank`'s frame as CSV, the neighbours as one text column ``nearest_measured``
    (``SYMBOL cosine effect|none strength; …``)."""
    path = Path(path)
    if path.suffix != ".csv":
        raise InputError(f"out={str(path)!r}: expected a .csv file")
    table = frame.drop(columns="neighbours").assign(
        rank=frame["rank"].astype("Int64"),
        entrez_id=frame["entrez_id"].astype("Int64"),
        nearest_measured=[_neighbour_text(n) for n in frame["neighbours"]],
    )
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return path
