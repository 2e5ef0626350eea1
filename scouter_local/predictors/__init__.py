"""Perturbation-response predictors and their registry.

Every method is a :class:`~scouter_local.predictors.base.Predictor` (``fit`` / ``predict``, scikit-learn style)
living in its own module; :data:`METHODS` maps a method name to ``"module:Class"``, imported only when the method
is used, so the registry needs no import of its methods (and the command line's ``--help`` no torch). Whether a
method uses the embeddings, is light or is a baseline are *traits*, class attributes of its class
(:data:`~scouter_local.predictors.base.TRAITS`): :func:`method_names` lists the methods by trait, and every list of
methods in the package comes from it.

>>> sorted(METHODS)
['additive', 'gene_delta', 'knn', 'no_change', 'ridge', 'scouter', 'train_mean']
>>> method_names(baseline=True)
['no_change', 'train_mean', 'additive', 'ridge', 'knn']
>>> method_names(uses_embeddings=True, baseline=False)
['gene_delta', 'scouter']
>>> make_predictor("ridge", seed=1).get_config()
{'seed': 1}
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

from gene_corpus.errors import InputError

if TYPE_CHECKING:
    from scouter_local.predictors.base import Predictor

METHODS: dict[str, str] = {
    "gene_delta": "scouter_local.predictors.gene_delta:GeneDeltaPredictor",
    "scouter": "scouter_local.predictors.scouter:ScouterPredictor",
    "no_change": "scouter_local.predictors.baselines:NoChange",
    "train_mean": "scouter_local.predictors.baselines:TrainMean",
    "additive": "scouter_local.predictors.baselines:Additive",
    "ridge": "scouter_local.predictors.baselines:Ridge",
    "knn": "scouter_local.predictors.baselines:KNN",
}
#: The method ``train`` uses unless told otherwise: the best one measured on the benchmarks (first in
#: :data:`METHODS`, so first wherever all methods are listed).
DEFAULT_METHOD = "gene_delta"
#: Tuples of method names kept for users' imports, derived from the traits on first use: ``BASELINES`` (run
#: beside every model) and ``EMBEDDING_METHODS`` (predictions depend on the gene embeddings).
_DERIVED = {"BASELINES": {"baseline": True}, "EMBEDDING_METHODS": {"uses_embeddings": True}}


def method_class(method: str) -> type[Predictor]:
    """The class registered as ``method``; an unknown name is an :class:`InputError` listing the known ones."""
    if method not in METHODS:
        raise InputError(f"method {method!r}: expected one of {', '.join(METHODS)}")
    module, _, name = METHODS[method].partition(":")
    return getattr(importlib.import_module(module), name)


def method_names(**traits: bool) -> list[str]:
    """Registered methods whose class has every trait of ``traits`` at the given value, in the order of
    :data:`METHODS` (no trait: every method, :data:`DEFAULT_METHOD` first).

    The traits are those of :data:`~scouter_local.predictors.base.TRAITS` (``uses_embeddings``, ``light``,
    ``baseline``); another name is an :class:`InputError`. Reading them imports the methods' modules (and torch).
    """
    from scouter_local.predictors.base import TRAITS

    unknown = sorted(set(traits) - set(TRAITS))
    if unknown:
        raise InputError(f"method trait {unknown[0]!r}: expected one of {', '.join(TRAITS)}")
    return [m for m in METHODS if all(getattr(method_class(m), t) == v for t, v in traits.items())]


def method_params(method: str) -> set[str]:
    """Constructor options of a registered method."""
    return set(inspect.signature(method_class(method)).parameters)


def make_predictor(method: str, **config: Any) -> Predictor:
    """Instantiate a registered method; an unknown name or option is an :class:`InputError`."""
    unknown = set(config) - method_params(method)
    if unknown:
        raise InputError(
            f"method {method!r} takes no option {', '.join(sorted(unknown))}; "
            f"it takes {', '.join(sorted(method_params(method)))}"
        )
    return method_class(method)(**config)


def __getattr__(name: str) -> tuple[str, ...]:
    """``BASELINES`` and ``EMBEDDING_METHODS``, read from the traits when asked for."""
    if name not in _DERIVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return tuple(method_names(**_DERIVED[name]))
