"""Scoring predictions against observed data, and ``evaluate``: a model on its test conditions or on other data."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gene_corpus.checks import names_of
from gene_corpus.errors import InputError
from scouter_local.data.effect import EffectLabel
from scouter_local.data.link import prepare_data_as_trained
from scouter_local.data.perturbation import PerturbationData
from scouter_local.data.splits import subgroup
from scouter_local.data.validate import check_anndata
from scouter_local.evaluation.metrics import condition_metrics
from scouter_local.evaluation.results import Evaluation
from scouter_local.evaluation.strong import StrongTargets

if TYPE_CHECKING:
    import anndata as ad

    from scouter_local.predictors.base import Predictor


def evaluate_predictions(
    data: PerturbationData,
    predictions: Mapping[str, np.ndarray],
    train_conditions: Sequence[str],
    *,
    method: str,
    strong: StrongTargets | None = None,
    train_mean_profile: np.ndarray | None = None,
    effect: EffectLabel | None = None,
) -> Evaluation:
    """Score predicted mean profiles against the observed ones.

    Parameters
    ----------
    data
        Observed data holding every evaluated condition and the control cells.
    predictions
        Condition → ``(n_genes,)`` mean predicted profile.
    train_conditions
        Conditions the method was trained on (they define the subgroups).
    method
        Method name recorded in the result.
    strong
        Adds each condition's ``strong`` flag and ``strong_value``, the summary group ``strong`` and
        ``info["strong_rule"]``.
    train_mean_profile
        ``(n_genes,)`` mean profile of the training conditions (a fitted predictor's ``train_mean_profile_``), the
        reference of ``pearson_centred_top20``; ``None``: that metric is undefined (NaN, ``null`` in JSON).
    effect
        Adds each condition's effect label and statistic (``effect``, ``effect_statistic``; ``None`` where
        unlabelled) and ``info["effect_rule"]``.
    """
    control = data.control_mean()
    rows = [
        {
            "condition": cond,
            "subgroup": subgroup(cond, train_conditions),
            **(strong.row(cond) if strong is not None else {}),
            **condition_metrics(
                data.condition_mean(cond),
                np.asarray(pred),
                control,
                data.de_genes[cond],
                train_mean_profile=train_mean_profile,
            ),
            **(effect.row(cond) if effect is not None else {}),
        }
        for cond, pred in predictions.items()
    ]
    result = Evaluation.from_rows(rows, method=method, info={"strong_rule": strong.rule()} if strong else None)
    if effect is not None:
        result.info["effect_rule"] = effect.rule
    result.predictions, result.data = {c: np.asarray(p) for c, p in predictions.items()}, data
    return result


def _eval_data(predictor: Predictor, data) -> tuple[PerturbationData, bool]:
    """``(data to score, whether it is the training data)`` for :func:`evaluate`."""
    source = predictor.data_source_
    if data is None:
        if getattr(predictor, "data_", None) is not None:
            return predictor.data_, True
        if source.get("path") is None:
            raise InputError(
                "the model was trained on an AnnData in memory and keeps no file to read it from; pass data=ADATA"
            )
        data = source["path"]
    if isinstance(data, PerturbationData):
        return data, data.source.get("path") is not None and data.source.get("path") == source.get("path")
    own = (
        not hasattr(data, "obs")
        and source.get("path") is not None
        and Path(data).resolve() == Path(source["path"]).resolve()
    )
    if source.get("db") is None:
        raise InputError("the model records no corpus database to resolve the data's genes with; pass db=DB")
    return prepare_data_as_trained(data, source, predictor.embeddings_), own


def evaluate(
    model: Predictor | str | os.PathLike,
    data: PerturbationData | ad.AnnData | str | os.PathLike | None = None,
    *,
    db: str | os.PathLike | None = None,
    baselines: Sequence[str] = (),
    strong: StrongTargets | None = None,
) -> Evaluation:
    """Score a model on the test conditions of its split, or on every condition of other data.

    Parameters
    ----------
    model
        A fitted predictor (see :func:`~scouter_local.training.train`) or a model folder.
    data
        ``None``: the data the model was trained on (in memory, or read again from its file), scored on the
        split's test conditions. Otherwise other data (a prepared :class:`PerturbationData`, an AnnData or an h5ad
        file, read with the model's data options), scored on all its conditions.
    db
        Corpus database of the model's embedding set (default: the one recorded at training).
    baselines
        Baselines fitted on the model's training conditions and scored on the same conditions.
    strong
        Adds the ``strong`` group (see :class:`StrongTargets`).

    Returns
    -------
    :class:`Evaluation` (``.conditions`` one row per condition, ``.summary`` per group, ``.baselines``).

    Examples
    --------
    >>> result = evaluate(model, baselines=["no_change"])  # model: gene_delta trained on the Norman screen
    >>> list(result.conditions.columns)  # doctest: +NORMALIZE_WHITESPACE
    ['condition', 'subgroup', 'normmse', 'pearson_delta_top20', 'pearson_delta_all', 'direction_top20',
     'pearson_centred_top20', 'effect', 'effect_statistic']
    >>> int(result.summary.loc["overall", "n"]), result.baselines["no_change"].mean("normmse")
    (7, 1.0)
    """
    from scouter_local.predictors.base import Predictor
    from scouter_local.predictors.checkpoint import load_model
    from scouter_local.predictors.training import train

    if data is not None and not isinstance(data, (PerturbationData, str, os.PathLike)):
        check_anndata(data, "data")
    predictor = model if isinstance(model, Predictor) else load_model(model, db=db)
    predictor._check_fitted()
    if db is not None:
        predictor.data_source_ = {**predictor.data_source_, "db": str(Path(db).resolve())}
    scored, own = _eval_data(predictor, data)
    if list(scored.genes) != list(predictor.genes_):
        raise InputError(
            f"the data has {len(scored.genes)} readout genes, the model {len(predictor.genes_)} "
            f"{'in another order' if sorted(scored.genes) == sorted(predictor.genes_) else 'other genes'}"
        )
    split = predictor.split_
    if own:
        if not split.test:
            raise InputError(
                f"the model was trained with split={split.kind!r}, so there are no test conditions; "
                "pass data=FILE to evaluate on other data"
            )
        missing = [c for c in split.test if c not in set(scored.perturbations)]
        if missing:
            raise InputError(f"test condition {missing[0]!r} of the saved split is not in the data")
        conditions = list(split.test)
    else:
        conditions = scored.perturbations
    effect = getattr(predictor, "effect_", None)
    result = evaluate_predictions(
        scored,
        dict(zip(conditions, predictor.predict(conditions))),
        predictor.train_conditions_,
        method=predictor.name,
        strong=strong,
        train_mean_profile=predictor.train_mean_profile_,
        effect=effect.label if effect is not None else None,
    )
    result.info.update(data=scored.source.get("path"), excluded=scored.excluded)
    if baselines:
        baselines = names_of(baselines, "baselines")
        training = scored if own else _eval_data(predictor, None)[0]
        for name in baselines:
            fitted = train(training, predictor.embeddings_, method=name, split=split, seed=predictor.seed, effect=None)
            result.baselines[name] = evaluate_predictions(
                scored,
                dict(zip(conditions, fitted.predict(conditions))),
                fitted.train_conditions_,
                method=name,
                strong=strong,
                train_mean_profile=predictor.train_mean_profile_,
            )
    return result
