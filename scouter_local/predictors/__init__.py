"""Perturbation-response predictors and their registry.

Every method is a :class:`~scouter_local.predictors.base.Predictor` (``fit`` / ``predict``, scikit-learn style)
living in its own module; :data:`METHODS` maps a method name to ``"module:Class"``, imported only when the method
is used, so the registry needs no import of its methods (and the command line's ``--help`` no torch).

>>> sorted(METHODS)
['additive', 'gene_delta', 'knn', 'no_change', 'ridge', 'scouter', 'train_mean']
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
#: The method ``train`` uses unless told otherwise: the best one measured on the benchmarks.
DEFAULT_METHOD = "gene_delta"
#: Baselines run beside every model (``evaluate``, ``benchmark``, the demo).
BASELINES = ("no_change", "train_mean", "additive", "ridge", "knn")
#: Methods whose predictions depend on the gene embeddings (what a shuffled-embedding control can test).
EMBEDDING_METHODS = ("gene_delta", "scouter", "ridge", "knn")


def method_class(method: str) -> type[Predictor]:
    """The class registered as ``method``; an unknown name is an :class:`InputError` listing the known ones."""
    if method not in METHODS:
        raise InputError(f"method {method!r}: expected one of {', '.join(METHODS)}")
    module, _, name = METHODS[method].partition(":")
    return getattr(importlib.import_module(module), name)


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
