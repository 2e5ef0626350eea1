"""How well studied each gene is, read from the corpus: the baseline any knowledge-based effect prediction must beat.

A gene that has been studied a lot has a long corpus document and many GO annotations, and where its document came
from (its ``kind``: a GenePT text, a RefSeq summary, a UniProt function, GO terms only) records which screens and
databases noticed it. Perturbing such a gene is more often detectable, whatever an embedding adds; the effect
model is scored beside these features and may use them (``scouter_local.predictors.effect``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from gene_corpus.documents import DEFAULT_TEMPLATE

#: Columns of :func:`well_studied_table` besides ``entrez_id``.
WELL_STUDIED_COLUMNS = ("doc_chars", "n_go", "kind")
#: ``kind`` of a gene without a document.
NO_DOCUMENT = "none"


def well_studied_table(
    db: str | os.PathLike, entrez_ids: Sequence[int], *, template: str | None = None
) -> pd.DataFrame:
    """Per gene: the characters of its corpus document, its number of GO annotations and its document's kind.

    Parameters
    ----------
    db
        Corpus database.
    entrez_ids
        Genes (Entrez ids; ``-1`` for a gene without one).
    template
        Document template of the embedded documents (an embedding set's ``spec['template']``); ``None``: the
        corpus's default template (sets not embedded from documents, e.g. GO sets).

    Returns
    -------
    ``(len(entrez_ids), 4)`` frame in the order of ``entrez_ids``: ``entrez_id``, ``doc_chars`` (0 without a
    document), ``n_go`` (distinct direct GO annotations of BP, MF and CC, evidence ND excluded; 0 without any) and
    ``kind`` (the document's kind, :data:`NO_DOCUMENT` without one).
    """
    from gene_corpus.corpus import Corpus

    ids = pd.DataFrame({"entrez_id": pd.Series(list(entrez_ids), dtype="int64")})
    with Corpus.open(db, read_only=True) as corpus:
        documents = corpus.documents(template or DEFAULT_TEMPLATE, entrez_ids=ids["entrez_id"].unique().tolist())
        corpus.con.register("_well_studied_ids", ids.drop_duplicates())
        try:
            n_go = corpus.con.execute(
                "SELECT entrez_id, count(DISTINCT go_id) AS n_go FROM go_annotations "
                "SEMI JOIN _well_studied_ids USING (entrez_id) WHERE evidence <> 'ND' GROUP BY entrez_id"
            ).df()
        finally:
            corpus.con.unregister("_well_studied_ids")
    documents = documents.assign(doc_chars=documents["text"].str.len())[["entrez_id", "doc_chars", "kind"]]
    out = ids.merge(documents, on="entrez_id", how="left").merge(
        n_go.astype({"entrez_id": "int64"}), on="entrez_id", how="left"
    )
    return out.fillna({"doc_chars": 0, "n_go": 0, "kind": NO_DOCUMENT}).astype(
        {"doc_chars": np.int64, "n_go": np.int64, "kind": str}
    )[["entrez_id", *WELL_STUDIED_COLUMNS]]
