"""``predict``: predicted responses as an AnnData (one row per perturbation), and writing them to CSV or h5ad."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import pandas as pd

from gene_corpus.errors import InputError
from gene_corpus.files import atomic_path
from scouter_local.conditions import condition_of, genes_in, genes_of, split_raw
from scouter_local.data.link import condition_rows
from scouter_local.data.splits import subgroup
from scouter_local.predictors.effect import combined_probability

if TYPE_CHECKING:
    from scouter_local.predictors.base import Predictor

PREDICTION_SUFFIXES = (".csv", ".tsv", ".h5ad")


def canonical_perturbations(perturbations: Sequence[str], db: str | os.PathLike | None) -> list[str]:
    """Perturbations as written by a user (``"A"``, ``"A+ctrl"``, ``"A+B"``, old symbols) → distinct conditions
    with current symbols, resolved through the corpus in ``db`` (``None``: taken as written)."""
    parsed = [(text, _perturbed_genes(text)) for text in perturbations]
    if db is not None:
        current = _current_symbols(parsed, db)
        parsed = [(text, [current[g] for g in genes]) for text, genes in parsed]
    return list(dict.fromkeys(condition_of(genes) for _, genes in parsed))


def _perturbed_genes(text: str) -> list[str]:
    """The one or two genes of a perturbation as written; another count is an :class:`InputError`."""
    genes = split_raw(text)
    if not genes or len(genes) > 2:
        raise InputError(f"perturbation {text!r}: expected 'A', 'A+ctrl' or 'A+B'")
    return genes


def _current_symbols(parsed: list[tuple[str, list[str]]], db: str | os.PathLike) -> dict[str, str]:
    """Gene as written → current symbol, for the genes of ``parsed`` ``(text, genes)`` pairs, through the corpus in
    ``db``; an unknown or ambiguous gene is an :class:`InputError` naming the perturbation it came in."""
    from gene_corpus.corpus import Corpus

    with Corpus.open(db, read_only=True) as corpus:
        resolved = corpus.resolve(sorted({g for _, genes in parsed for g in genes}))
    current = {}
    for r in resolved:
        if r.how in ("unknown", "ambiguous"):
            hint = f" (candidates: {', '.join(map(str, r.candidates[:5]))})" if r.candidates else ""
            text = next(t for t, genes in parsed if r.query in genes)
            raise InputError(f"perturbation {text!r}: gene {r.query} is {r.how} in the corpus{hint}")
        current[r.query] = r.symbol
    return current


def predict(
    model: Predictor | str | os.PathLike, perturbations: Sequence[str], *, db: str | os.PathLike | None = None
) -> ad.AnnData:
    """Predicted mean expression of perturbations, as an AnnData.

    Parameters
    ----------
    model
        A fitted predictor or a model folder.
    perturbations
        ``"A"``, ``"A+ctrl"`` or ``"A+B"``; genes are resolved through the corpus (old symbols, aliases, Ensembl
        ids) when the model records its database.
    db
        Corpus database (default: the one recorded at training).

    Returns
    -------
    AnnData of shape ``(n_perturbations, n_genes)``:

    - ``X``: predicted mean expression (deltas from control for pseudo-bulk delta data);
    - ``layers['delta']``: ``X`` minus the control mean;
    - ``obs``: ``condition`` (current symbols) and ``subgroup`` (what training saw of its genes); where the model
      has an effect part, ``p_effect``: the calibrated probability that the perturbation has a detectable effect
      (a combination's from its genes': ``1 - Π(1 - p_gene)``, the chance that at least one of them has one,
      genes taken as independent);
    - ``var_names``: the readout genes;
    - ``uns['scouter_local']``: ``method``, ``config`` (JSON text), ``embedding`` (set name and fingerprint); with
      ``p_effect``, also ``p_effect_genes``: gene → its own probability.

    Examples
    --------
    >>> pred = predict(model, ["KLF1+MAP2K6", "IER5L"])  # model: gene_delta trained on the Norman screen
    >>> pred.shape, pred.layers["delta"].shape
    ((2, 500), (2, 500))
    >>> pred.obs
                    condition     subgroup
    perturbation
    KLF1+MAP2K6   KLF1+MAP2K6  combo_seen2
    IER5L+ctrl     IER5L+ctrl  single_seen
    """
    from scouter_local.predictors.base import Predictor
    from scouter_local.predictors.checkpoint import load_model

    predictor = model if isinstance(model, Predictor) else load_model(model, db=db)
    db = db or predictor.data_source_.get("db")
    conditions = canonical_perturbations(perturbations, db)
    values = predictor.predict(conditions)
    emb = predictor.embeddings_
    predictions = ad.AnnData(
        X=values,
        obs=pd.DataFrame(
            {"condition": conditions, "subgroup": [subgroup(c, predictor.train_conditions_) for c in conditions]},
            index=pd.Index(conditions, name="perturbation"),
        ),
        var=pd.DataFrame(index=pd.Index(predictor.genes_, name="gene")),
        layers={"delta": (values - predictor.control_mean_).astype(np.float32)},
        uns={
            "scouter_local": {
                "method": predictor.name,
                "config": json.dumps(predictor.get_config()),
                "embedding": {"name": emb.name, "fingerprint": emb.fingerprint},
            }
        },
    )
    effect = getattr(predictor, "effect_", None)
    if effect is not None and effect.model is not None:
        _add_p_effect(predictions, predictor, db)
    return predictions


def _add_p_effect(predictions: ad.AnnData, predictor: Predictor, db: str | os.PathLike | None) -> None:
    """``obs['p_effect']`` of each predicted condition and ``uns['scouter_local']['p_effect_genes']``."""
    conditions = list(predictions.obs["condition"])
    genes = genes_in(conditions)
    rows = [condition_rows(condition_of([g]), predictor.gene_rows_, predictor.embeddings_)[0] for g in genes]
    per_gene = dict(zip(genes, predictor.effect_.predict(rows, predictor.embeddings_, db)["p_effect"].tolist()))
    predictions.obs["p_effect"] = [combined_probability([per_gene[g] for g in genes_of(c)]) for c in conditions]
    predictions.uns["scouter_local"]["p_effect_genes"] = per_gene


def write_predictions(adata: ad.AnnData, path: str | os.PathLike) -> Path:
    """Write predictions (:func:`predict`) as h5ad, or ``X`` as CSV/TSV (rows: conditions, columns: genes; a first
    column ``p_effect`` where the predictions have one)."""
    path = Path(path)
    if path.suffix not in PREDICTION_SUFFIXES:
        raise InputError(f"out={str(path)!r}: expected a .csv, .tsv or .h5ad file")
    with atomic_path(path) as tmp:
        if path.suffix == ".h5ad":
            out = adata.copy()
            out.var_names_make_unique()
            out.write_h5ad(tmp)
        else:
            table = pd.DataFrame(
                np.asarray(adata.X),
                index=pd.Index(adata.obs["condition"], name="condition"),
                columns=list(adata.var_names),
            )
            if "p_effect" in adata.obs:
                table.insert(0, "p_effect", adata.obs["p_effect"].to_numpy())
            table.to_csv(tmp, sep="\t" if path.suffix == ".tsv" else ",")
    return path
