"""``train``: fit a registered method on the training conditions of a split, ready to save, predict and evaluate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scouter_local.data.perturbation import PerturbationData
from scouter_local.data.splits import Split, make_split
from scouter_local.embedding.sets import EmbeddingSet
from scouter_local.predictors import DEFAULT_METHOD, make_predictor
from scouter_local.runtime import DEFAULT_SEED

if TYPE_CHECKING:
    from scouter_local.predictors.base import Predictor


def train(
    data: PerturbationData,
    embeddings: EmbeddingSet,
    *,
    method: str = DEFAULT_METHOD,
    split: str | Split = "scouter",
    seed: int = DEFAULT_SEED,
    test_ratio: float = 0.2,
    val_ratio: float = 0.1,
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
        Seed of the split and of the method.
    config
        Options of the method (e.g. ``epochs=5`` for Scouter).

    Returns
    -------
    The fitted predictor. It carries what saving and evaluating need: ``split_``, ``data_source_`` (file,
    options, database), ``de_genes_``, ``excluded_``, and ``data_`` (``data`` itself, not saved), so
    ``evaluate(predictor)`` scores the test conditions with no other argument.

    Examples
    --------
    >>> model = train(data, embeddings, method="train_mean", seed=1)  # data: the Norman screen, prepared
    >>> len(model.split_.train), len(model.split_.val), len(model.split_.test)
    (23, 3, 7)
    """
    if not isinstance(split, Split):
        split = make_split(data, split, seed=seed, test_ratio=test_ratio, val_ratio=val_ratio)
    predictor = make_predictor(method, seed=seed, **config)
    predictor.fit(data.subset(split.train), embeddings, val=data.subset(split.val) if split.val else None)
    predictor.split_ = split
    predictor.data_ = data
    return predictor
