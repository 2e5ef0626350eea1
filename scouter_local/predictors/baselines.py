"""Baselines in the :class:`~scouter_local.predictors.base.Predictor` interface; always run beside the model.

``no_change`` (control mean), ``train_mean`` (mean profile of the training conditions), ``additive`` (control + sum
of the trained single-gene deltas), ``ridge`` (summed gene embedding → delta, alpha by CV) and ``knn`` (mean delta of
the k nearest trained genes in embedding space, summed over the genes of a combination).
"""

from __future__ import annotations

import numpy as np
import torch

from scouter_local.conditions import genes_of
from scouter_local.data.perturbation import PerturbationData
from scouter_local.embedding.sets import unit_rows
from scouter_local.predictors.base import Predictor
from scouter_local.runtime import DEFAULT_SEED


def _deltas(train: PerturbationData, conditions: list[str]) -> np.ndarray:
    """``(n_conditions, n_genes)`` observed mean minus control mean."""
    ctrl = train.control_mean()
    return np.stack([train.condition_mean(c) - ctrl for c in conditions]).astype(np.float32)


def _single_deltas(train: PerturbationData) -> tuple[list[str], np.ndarray]:
    """Genes with a trained single condition and their ``(n, n_genes)`` deltas."""
    singles = [c for c in train.perturbations if len(genes_of(c)) == 1]
    deltas = _deltas(train, singles) if singles else np.zeros((0, train.n_genes), dtype=np.float32)
    return [genes_of(c)[0] for c in singles], deltas


class _Baseline(Predictor):
    """A baseline: fitted in well under a second, run beside every model."""

    baseline = True
    light = True


class NoChange(_Baseline):
    """Predicts the control mean for every condition (NormMSE 1 by construction)."""

    name = "no_change"

    def _fit(self, train, val):
        pass

    def _predict(self, conditions):
        return np.tile(self.control_mean_, (len(conditions), 1))


class TrainMean(_Baseline):
    """Predicts the mean of the training conditions' mean profiles."""

    name = "train_mean"

    def _fit(self, train, val):
        self.train_mean_ = train.mean_profile()

    def _predict(self, conditions):
        return np.tile(self.train_mean_, (len(conditions), 1))

    def _state(self):
        return {"train_mean": torch.from_numpy(self.train_mean_)}

    def _load_state(self, state, meta):
        self.train_mean_ = state["train_mean"].numpy()


class _SingleDeltaPredictor(_Baseline):
    """Shared storage of the trained single-gene deltas."""

    def _fit(self, train, val):
        self.single_genes_, self.single_deltas_ = _single_deltas(train)

    def _state(self):
        return {"single_deltas": torch.from_numpy(self.single_deltas_)}

    def _meta(self):
        return {"single_genes": self.single_genes_}

    def _load_state(self, state, meta):
        self.single_genes_, self.single_deltas_ = list(meta["single_genes"]), state["single_deltas"].numpy()


class Additive(_SingleDeltaPredictor):
    """Control + sum of the deltas of the condition's genes measured as trained singles (an untrained gene adds 0)."""

    name = "additive"

    def _predict(self, conditions):
        index = {g: i for i, g in enumerate(self.single_genes_)}
        out = np.tile(self.control_mean_, (len(conditions), 1))
        for k, c in enumerate(conditions):
            for g in genes_of(c):
                if g in index:
                    out[k] += self.single_deltas_[index[g]]
        return out


class KNN(_SingleDeltaPredictor):
    """Control + per gene the mean delta of its ``k`` nearest trained single genes (cosine), summed over genes."""

    name = "knn"
    uses_embeddings = True

    def __init__(self, *, seed: int = DEFAULT_SEED, k: int = 5) -> None:
        super().__init__(seed=seed)
        self.k = k

    def get_config(self):
        return {**super().get_config(), "k": self.k}

    def _predict(self, conditions):
        out = np.tile(self.control_mean_, (len(conditions), 1))
        if not self.single_genes_:
            return out
        ref = self.condition_embedding([f"{g}+ctrl" for g in self.single_genes_])
        ref = unit_rows(ref, ref.dtype)
        k = min(self.k, len(ref))
        for i, c in enumerate(conditions):
            for g in genes_of(c):
                q = self.condition_embedding([f"{g}+ctrl"])[0]
                sim = ref @ unit_rows(q[None], q.dtype)[0]
                out[i] += self.single_deltas_[np.argsort(-sim, kind="stable")[:k]].mean(axis=0)
        return out


class Ridge(_Baseline):
    """Ridge regression from the summed gene embedding to the delta; alpha chosen by leave-one-out CV."""

    name = "ridge"
    uses_embeddings = True
    alphas = tuple(np.logspace(-3, 3, 13))

    def _fit(self, train, val):
        from sklearn.linear_model import RidgeCV

        conds = train.perturbations
        model = RidgeCV(alphas=self.alphas).fit(self.condition_embedding(conds), _deltas(train, conds))
        self.coef_ = model.coef_.astype(np.float32)  # (n_genes, dim)
        self.intercept_ = np.asarray(model.intercept_, dtype=np.float32)
        self.alpha_ = float(model.alpha_)

    def _predict(self, conditions):
        return self.control_mean_ + self.condition_embedding(conditions) @ self.coef_.T + self.intercept_

    def _state(self):
        return {"coef": torch.from_numpy(self.coef_), "intercept": torch.from_numpy(self.intercept_)}

    def _meta(self):
        return {"alpha": self.alpha_}

    def _load_state(self, state, meta):
        self.coef_, self.intercept_ = state["coef"].numpy(), state["intercept"].numpy()
        self.alpha_ = float(meta["alpha"])
