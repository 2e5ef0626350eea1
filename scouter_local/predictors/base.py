"""The estimator interface every method implements.

A :class:`Predictor` is fitted with ``fit(train, embeddings, val=None)`` and predicts ``(n_conditions, n_genes)``
mean expression with ``predict(conditions)`` (scikit-learn style); :mod:`scouter_local.predictors.checkpoint` saves
and loads it. What callers need to know of a method without fitting it are its *traits*, class attributes listed in
:data:`TRAITS` and read through :func:`~scouter_local.predictors.method_names`.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import torch

from gene_corpus.errors import InputError
from scouter_local.conditions import CTRL
from scouter_local.data.link import condition_rows, condition_vectors
from scouter_local.data.perturbation import PerturbationData
from scouter_local.data.splits import Split, check_seed
from scouter_local.embedding.sets import EmbeddingSet
from scouter_local.runtime import DEFAULT_SEED

#: The method traits (boolean class attributes of :class:`Predictor`, documented there).
TRAITS = ("uses_embeddings", "light", "baseline")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Predictor(ABC):
    """Estimator interface shared by Scouter, ``gene_delta``, the baselines and any later method.

    Fitted attributes (trailing ``_``): ``genes_`` readout gene order, ``control_cells_`` ``(n_ctrl, n_genes)``,
    ``control_mean_`` ``(n_genes,)``, ``train_mean_profile_`` ``(n_genes,)`` mean profile of the training conditions
    (the reference of the metric ``pearson_centred_top20``; ``None`` in a model folder saved without it),
    ``gene_rows_`` current symbol → embedding row, ``train_conditions_``,
    ``embeddings_`` the :class:`EmbeddingSet` used, ``is_delta_``, ``split_`` the :class:`Split` it was trained
    on, ``data_source_`` where the data came from (path or ``None`` for an AnnData in memory, options, database),
    ``de_genes_`` condition → names of its top-20 DE genes, ``excluded_`` conditions left out of the data.
    """

    name: ClassVar[str]
    #: Its predictions depend on the gene embeddings, so a shuffled-embedding control can test them (the benchmark
    #: fits it on row-permuted copies of the set too).
    uses_embeddings: ClassVar[bool] = False
    #: It fits in about a second: the benchmark runs it with the other light methods in one process per seed
    #: (fit time measured per method, peak memory per process) instead of a process of its own.
    light: ClassVar[bool] = False
    #: A baseline: run beside every model (``evaluate``, the benchmark's and the demo's defaults), for users to see
    #: whether the model earns its keep.
    baseline: ClassVar[bool] = False
    #: Upper bound on stored control cells (sampled), to keep checkpoints small.
    max_control_cells: ClassVar[int] = 2000

    def __init__(self, *, seed: int = DEFAULT_SEED) -> None:
        self.seed = check_seed(seed)

    # -- interface ------------------------------------------------------------------------------------
    def fit(self, train: PerturbationData, embeddings: EmbeddingSet, *, val: PerturbationData | None = None):
        """Fit on the perturbed conditions of ``train`` (``val`` only steers early stopping). Returns ``self``."""
        seed_everything(self.seed)
        conds = train.perturbations
        if not conds:
            raise InputError("training data has no perturbed condition")
        self.genes_ = list(train.genes)
        self.control_cells_ = train.sample_cells(CTRL, self.max_control_cells, self.seed)
        self.control_mean_ = train.control_mean().astype(np.float32)
        self.train_mean_profile_ = train.mean_profile()
        self.gene_rows_ = dict(train.gene_rows)
        self.train_conditions_ = list(conds)
        self.embeddings_ = embeddings
        self.is_delta_ = train.is_delta
        self.split_ = Split(train=list(conds), val=val.perturbations if val is not None else [], test=[])
        self.data_source_ = dict(train.source)
        self.de_genes_ = {c: [train.genes[i] for i in idx] for c, idx in train.de_genes.items()}
        self.excluded_ = dict(train.excluded)
        self._fit(train, val)
        return self

    def predict(self, conditions: list[str]) -> np.ndarray:
        """``(n_conditions, n_genes)`` mean predicted expression (deltas for delta data) of each condition."""
        self._check_fitted()
        if not conditions:
            return np.zeros((0, len(self.genes_)), dtype=np.float32)
        for c in conditions:
            self.embedding_rows(c)  # every gene must have an embedding row
        return np.asarray(self._predict(list(conditions)), dtype=np.float32)

    def get_config(self) -> dict:
        """Constructor arguments (JSON-serialisable)."""
        return {"seed": self.seed}

    @abstractmethod
    def _fit(self, train: PerturbationData, val: PerturbationData | None) -> None: ...

    @abstractmethod
    def _predict(self, conditions: list[str]) -> np.ndarray: ...

    def _state(self) -> dict[str, torch.Tensor]:
        """Learned tensors beyond the shared fitted attributes (saved in ``model.pt``)."""
        return {}

    def _meta(self) -> dict:
        """Learned JSON-serialisable values (gene lists, chosen alpha …; saved in the manifest)."""
        return {}

    def _load_state(self, state: dict[str, torch.Tensor], meta: dict) -> None:
        """Restore :meth:`_state` and :meth:`_meta` (shared fitted attributes are already set)."""

    # -- helpers --------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "genes_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")

    def embedding_rows(self, condition: str) -> list[int]:
        """Embedding rows of the genes of ``condition``; a gene without a row is an :class:`InputError`."""
        return condition_rows(condition, self.gene_rows_, self.embeddings_)

    def condition_embedding(self, conditions: list[str]) -> np.ndarray:
        """``(n_conditions, dim)`` sum of the perturbed genes' embeddings (``ctrl`` adds zero, as in Scouter)."""
        return condition_vectors(conditions, self.gene_rows_, self.embeddings_)
