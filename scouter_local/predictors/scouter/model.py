"""Scouter (Zhu & Li, Nat Comput Sci 2025): a control cell's encoding plus the summed gene embeddings → perturbed cell.

The network is an MLP encoder of a control cell and an MLP generator of [encoding, perturbation embedding]
(:mod:`~scouter_local.predictors.scouter.network`); training uses GEARS's autofocus + direction-aware loss, per
condition, with early stopping that restores a real copy of the best epoch's weights (scouter-learn keeps the last
epoch; :mod:`~scouter_local.predictors.scouter.training`). Cells are streamed from memory or from a backed h5ad
(:mod:`~scouter_local.predictors.scouter.loader`), and several processes (``accelerate launch`` / ``torchrun``)
train one model data-parallel. This module keeps the predictor: its options, the network it builds, fitting
(loaders handed to the training plan), prediction and saved state.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from gene_corpus.checks import check_int
from gene_corpus.errors import InputError
from scouter_local.data.perturbation import PerturbationData
from scouter_local.predictors.base import Predictor
from scouter_local.predictors.scouter.loader import PairLoader
from scouter_local.predictors.scouter.network import ScouterNet
from scouter_local.predictors.scouter.training import TrainingPlan
from scouter_local.runtime import DEFAULT_SEED, settings

#: Largest ``epochs`` accepted (early stopping ends most runs far sooner).
MAX_EPOCHS = 100_000
#: Largest ``batch_size`` and ``n_pred`` accepted.
MAX_BATCH = 1_000_000


class ScouterPredictor(Predictor):
    """Scouter (Zhu & Li 2025): a control cell's encoding plus the summed gene embeddings → perturbed cell.

    Defaults are scouter-learn 0.1.10's ``Scouter.train``: 40 epochs, batch 256, Adam lr 1e-3 with exponential
    decay 0.9 per epoch, gradient norm clipped at 1, loss gamma 0 / lambda 0.5, early stopping after 5 epochs
    without a validation-loss gain above 1e-3 — here restoring a real copy of the best weights, the untrained
    start included. Prediction is the mean over ``n_pred`` sampled control cells.

    Delta data (one row per perturbation, control = zero vector) has no control cell to encode: the network is
    the generator alone, predicting a residual on the training mean delta that starts at 0 (so the untrained
    model is ``train_mean``), its BatchNorm statistics are re-estimated before each evaluation
    (:func:`~scouter_local.predictors.scouter.training.precise_batchnorm`), and ``lr=None`` means :attr:`delta_lr`
    instead of 1e-3: at 1e-3 the residual spreads as much as the deltas themselves after 3 Adam steps (sd 0.135 vs
    0.133 on the Replogle K562 screen), i.e. it memorises the few hundred rows at once.
    """

    name = "scouter"
    uses_embeddings = True
    #: Adam learning rate on delta data when ``lr`` is None (chosen on the Replogle K562 screen, issue #11: the only
    #: pseudo-bulk screen at hand; 1e-3 is Scouter's own for single cells).
    delta_lr: ClassVar[float] = 1e-5

    def __init__(
        self,
        *,
        seed: int = DEFAULT_SEED,
        epochs: int = 40,
        batch_size: int = 256,
        lr: float | None = None,
        lr_decay: float = 0.9,
        loss_gamma: float = 0.0,
        loss_lambda: float = 0.5,
        patience: int = 5,
        min_delta: float = 1e-3,
        grad_clip: float = 1.0,
        n_pred: int = 300,
        encoder: tuple[int, ...] = (2048, 512, 64),
        generator: tuple[int, ...] = (2048,),
        device: str | None = None,
    ) -> None:
        super().__init__(seed=seed)
        check_int(epochs, "epochs", low=1, high=MAX_EPOCHS)
        check_int(batch_size, "batch_size", low=2, high=MAX_BATCH)  # BatchNorm needs two rows per batch
        check_int(patience, "patience", low=1)
        check_int(n_pred, "n_pred", low=1, high=MAX_BATCH)
        self.epochs, self.batch_size, self.lr, self.lr_decay = epochs, batch_size, lr, lr_decay
        self.loss_gamma, self.loss_lambda, self.patience, self.min_delta = loss_gamma, loss_lambda, patience, min_delta
        self.grad_clip, self.n_pred = grad_clip, n_pred
        self.encoder, self.generator, self.device = tuple(encoder), tuple(generator), device

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "lr_decay": self.lr_decay,
            "loss_gamma": self.loss_gamma,
            "loss_lambda": self.loss_lambda,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "grad_clip": self.grad_clip,
            "n_pred": self.n_pred,
            "encoder": list(self.encoder),
            "generator": list(self.generator),
            "device": self.device,
        }

    def _build(self) -> None:
        self.device_ = torch.device(settings.torch_device(self.device))
        self.net_ = ScouterNet(
            len(self.genes_), self.embeddings_.dim, self.encoder, self.generator, use_control=not self.is_delta_
        ).to(self.device_)

    def training_plan(self) -> TrainingPlan:
        """The :class:`TrainingPlan` of these options for the data fitted (the learning rate and precise BatchNorm
        depend on whether it is delta data)."""
        return TrainingPlan(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr if self.lr is not None else self.delta_lr if self.is_delta_ else 1e-3,
            lr_decay=self.lr_decay,
            loss_gamma=self.loss_gamma,
            loss_lambda=self.loss_lambda,
            patience=self.patience,
            min_delta=self.min_delta,
            grad_clip=self.grad_clip,
            seed=self.seed,
            precise_bn=self.is_delta_,
        )

    def _fit(self, train: PerturbationData, val: PerturbationData | None) -> None:
        settings.apply_threads()
        self._build()
        if self.is_delta_:
            self.net_.offset.copy_(torch.from_numpy(train.mean_profile()))
        done = self.training_plan().fit(self.net_, *self._loaders(train, val), self.device_)
        self.history_, self.best_epoch_, self.device_ = done.history, done.best_epoch, done.device

    def _loaders(self, train: PerturbationData, val: PerturbationData | None) -> tuple[PairLoader, PairLoader | None]:
        """Cells of ``train`` and of ``val`` (``None`` without a perturbed condition) paired with control cells;
        fewer than 2 training cells is an :class:`InputError`."""
        pairs = PairLoader(train, self.condition_embedding, np.random.RandomState(self.seed))
        if len(pairs) < 2:
            raise InputError("training needs at least 2 perturbed cells (rows)")
        val_pairs = (
            PairLoader(val, self.condition_embedding, np.random.RandomState(self.seed))
            if val is not None and val.perturbations
            else None
        )
        return pairs, val_pairs

    def _predict(self, conditions: list[str]) -> np.ndarray:
        rng = np.random.RandomState(self.seed)
        ctrl = torch.from_numpy(self.control_cells_[rng.choice(len(self.control_cells_), self.n_pred, replace=True)])
        ctrl = ctrl.to(self.device_)
        emb = torch.from_numpy(self.condition_embedding(conditions)).to(self.device_)
        self.net_.eval()
        out = []
        with torch.no_grad():
            for e in emb:
                out.append(self.net_(e.expand(len(ctrl), -1), ctrl).mean(dim=0).cpu().numpy())
        return np.stack(out)

    def _state(self) -> dict[str, torch.Tensor]:
        return {f"net.{k}": v.detach().cpu() for k, v in self.net_.state_dict().items()}

    def _load_state(self, state: dict[str, torch.Tensor], meta: dict) -> None:
        self._build()
        try:
            self.net_.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
        except RuntimeError as exc:  # e.g. a Scouter model of delta data saved while it still had an encoder
            detail = (str(exc).splitlines()[1:] or [str(exc)])[0].strip()
            raise InputError(
                f"the saved Scouter weights are of another network ({detail[:100]}); "
                "retrain the model with this version"
            ) from exc
        self.net_.eval()
