"""``train``: fit a registered method on the training conditions of a split, ready to save, predict and evaluate."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from gene_corpus.errors import InputError
from scouter_local.data.effect import EffectLabel, effect_label
from scouter_local.data.perturbation import PerturbationData
from scouter_local.data.splits import Split, make_split
from scouter_local.embedding.sets import EmbeddingSet
from scouter_local.predictors import DEFAULT_METHOD, make_predictor
from scouter_local.predictors.effect import EffectPart, fit_effect
from scouter_local.runtime import DEFAULT_SEED

if TYPE_CHECKING:
    from scouter_local.predictors.base import Predictor

#: ``effect`` of :func:`train` that computes the label (a user column, else the E-test of single cells).
AUTO = "auto"


def train(
    data: PerturbationData,
    embeddings: EmbeddingSet,
    *,
    method: str = DEFAULT_METHOD,
    split: str | Split = "scouter",
    seed: int = DEFAULT_SEED,
    test_ratio: float = 0.2,
    val_ratio: float = 0.1,
    effect: EffectLabel | str | None = AUTO,
    strong_key: str | None = None,
    strong_above: float | None = None,
    **config: Any,
) -> Predictor:
    """Fit ``method`` on the training conditions of a split of ``data``.

    Parameters
    ----------
    data
        A screen with its genes resolved onto ``embeddings`` (:func:`~scouter_local.data.prepare_data`).
    embeddings
        The gene embedding set.
    method
        A method of :data:`~scouter_local.predictors.METHODS`.
    split
        A :class:`~scouter_local.data.Split`, or how to draw one (``scouter``, ``simulation``, ``none``, a JSON
        file; see :func:`~scouter_local.data.make_split`). Validation conditions steer early stopping only.
    seed
        Seed of the split, of the method and of the effect model's folds.
    effect
        The effect label of ``data``'s conditions, for the effect model fitted beside the method (on the
        labelled single-gene conditions of the split's train and val parts): ``"auto"`` computes it
        (:func:`~scouter_local.data.effect.effect_label`: the ``strong_key`` column above ``strong_above``, else the
        E-test of single cells; pseudo-bulk data without a column get none); an
        :class:`~scouter_local.data.effect.EffectLabel`; or ``None`` (no effect part). When the label leaves too
        few genes to learn from, a warning says so and the model has no effect part (``rank`` refuses it).
    strong_key, strong_above
        Numeric ``obs`` column and threshold of the effect label (``effect="auto"``).
    config
        Options of the method (e.g. ``epochs=5`` for Scouter).

    Returns
    -------
    The fitted predictor. It carries what saving and evaluating need: ``split_``, ``data_source_`` (file,
    options, database), ``de_genes_``, ``excluded_``, and ``data_`` (``data`` itself, not saved), so
    ``evaluate(predictor)`` scores the test conditions with no other argument; ``effect_`` (an
    :class:`~scouter_local.predictors.effect.EffectPart`, or ``None`` without a label).

    Examples
    --------
    >>> model = train(data, embeddings, method="train_mean", seed=1)  # data: the Norman screen, prepared
    >>> len(model.split_.train), len(model.split_.val), len(model.split_.test)
    (23, 3, 7)
    """
    if not isinstance(split, Split):
        split = make_split(data, split, seed=seed, test_ratio=test_ratio, val_ratio=val_ratio)
    predictor = make_predictor(method, seed=seed, **config)
    label = _label(data, effect, strong_key, strong_above)
    predictor.fit(data.subset(split.train), embeddings, val=data.subset(split.val) if split.val else None)
    predictor.split_ = split
    predictor.data_ = data
    predictor.effect_ = None if label is None else _effect_part(data, embeddings, split, label, seed)
    return predictor


def _label(
    data: PerturbationData, effect: EffectLabel | str | None, strong_key: str | None, strong_above: float | None
) -> EffectLabel | None:
    """The effect label ``train`` fits the effect model on (see its ``effect``)."""
    if isinstance(effect, EffectLabel) or effect is None:
        if strong_key is not None:
            raise InputError(f"effect={effect!r} and strong_key={strong_key!r}: a column labels only effect='auto'")
        return effect
    if effect != AUTO:
        raise InputError(f"effect={effect!r}: expected 'auto', an EffectLabel or None")
    return effect_label(data, strong_key=strong_key, strong_above=strong_above)


def _effect_part(
    data: PerturbationData, embeddings: EmbeddingSet, split: Split, label: EffectLabel, seed: int
) -> EffectPart:
    """The effect model on the split's labelled training singles, or (with a warning) the reason there is none."""
    try:
        return fit_effect(data, embeddings, [*split.train, *split.val], label, seed=seed)
    except InputError as exc:
        warnings.warn(f"the model has no effect part (rank refuses it): {exc}", stacklevel=3)
        return EffectPart(label, reason=str(exc))
