"""scouter-local: offline prediction of transcriptional responses to unseen genetic perturbations.

The public API, in the order of the flow (``import scouter_local as sl``)::

    sl.Corpus                      # gene corpus (DuckDB): import, resolve, documents
    sl.embed, sl.load_embedding_set, sl.neighbors
    sl.perturbation_data, sl.prepare_data, sl.DataOptions, sl.PRESETS, sl.make_split
    sl.train, sl.predict, sl.rank, sl.evaluate, sl.benchmark, sl.save_model, sl.load_model
    sl.settings, sl.InputError

Names are imported on first use, so ``import scouter_local`` (and the command line's ``--help``) loads neither
torch nor pandas. Nothing reaches a model hub unless a command is given ``--allow-download``: the hub libraries'
offline variables are set on import (:meth:`~scouter_local.runtime.Settings.apply_environment`).
"""

from __future__ import annotations

import importlib

from scouter_local.runtime import settings

__version__ = "0.1.0"

settings.apply_environment()

#: Public name → ``module`` or ``module:attribute`` it comes from.
_PUBLIC = {
    "Corpus": "gene_corpus.corpus",
    "InputError": "gene_corpus.errors",
    "embed": "scouter_local.embedding.pipeline:embed_corpus",
    "load_embedding_set": "scouter_local.embedding.store",
    "neighbors": "scouter_local.index",
    "NeighborIndex": "scouter_local.index",
    "DataOptions": "scouter_local.data.options",
    "PRESETS": "scouter_local.datasets",
    "PerturbationData": "scouter_local.data.perturbation",
    "Split": "scouter_local.data.splits",
    "perturbation_data": "scouter_local.data.read",
    "read_perturbation_data": "scouter_local.data.read",
    "prepare_data": "scouter_local.data.link",
    "make_split": "scouter_local.data.splits",
    "train": "scouter_local.predictors.training",
    "predict": "scouter_local.predictors.prediction",
    "rank": "scouter_local.predictors.ranking",
    "Evaluation": "scouter_local.evaluation.results",
    "evaluate": "scouter_local.evaluation.scoring",
    "benchmark": "scouter_local.benchmarking.benchmark:run_benchmark",
    "save_model": "scouter_local.predictors.checkpoint",
    "load_model": "scouter_local.predictors.checkpoint",
}
__all__ = sorted([*_PUBLIC, "settings", "__version__"])


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'scouter_local' has no attribute {name!r}")
    module, _, attribute = _PUBLIC[name].partition(":")
    return getattr(importlib.import_module(module), attribute or name)


def __dir__() -> list[str]:
    return __all__
