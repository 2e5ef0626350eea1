"""Scouter's training loop (no AnnData), apart from its network and its predictor as scvi-tools keeps a
``TrainingPlan``: epochs of Adam with exponential learning-rate decay and clipped gradients, data-parallel through
accelerate when several processes run, a per-epoch history, early stopping that restores a real copy of the best
weights (the untrained start included; scouter-learn keeps the last epoch) and, for delta data, BatchNorm
statistics re-estimated before every evaluation.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from scouter_local.predictors.scouter.loader import PairLoader
from scouter_local.predictors.scouter.network import gears_loss
from scouter_local.runtime import launcher_rank

log = logging.getLogger(__name__)

#: A batch of :meth:`PairLoader.batches`: ``(embedding, control, observed, mask, condition id)``.
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def accelerator(device: str):
    """accelerate's ``Accelerator`` when this process is one of several (``accelerate launch`` / ``torchrun``,
    ``WORLD_SIZE > 1``), else ``None``. ``device="cpu"`` (or no CUDA) runs the processes on CPU (gloo)."""
    if launcher_rank() is None:
        return None
    from accelerate import Accelerator

    return Accelerator(cpu=device == "cpu" or not torch.cuda.is_available())


def precise_batchnorm(net: nn.Module, pairs: PairLoader, *, batch_size: int, seed: int, device: torch.device) -> None:
    """Re-estimate the BatchNorm running statistics of ``net``'s current weights as the plain average of the batch
    statistics over one seeded, shuffled pass of ``pairs`` ("precise BN"); ``net`` is left in eval mode.

    For delta data: with one row per perturbation an epoch is a few batches, so the running averages kept during
    training (momentum 0.1) still weigh their initial values by 0.9^steps (0.28 after 12 steps, against a true
    variance near 0.004): eval mode would flatten the generator's hidden layer and the residual would hardly
    depend on the perturbation. Single-cell data trains hundreds of steps and keeps Scouter's running averages.
    """
    layers = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)]
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.train()
    with torch.no_grad():
        for emb, ctrl, *_ in pairs.batches(batch_size, torch.Generator().manual_seed(seed), device):
            net(emb, ctrl)
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
    net.eval()


class BestWeights:
    """Early stopping's memory: the lowest validation loss so far, a real copy of the weights that reached it
    (scouter-learn kept a reference to the live state dict, i.e. the last epoch's weights), its epoch, and the
    epochs since it last improved."""

    def __init__(self, min_delta: float) -> None:
        self.min_delta = min_delta
        self.loss, self.state, self.epoch, self.stale = np.inf, None, 0, 0

    def keep(self, loss: float, net: nn.Module, epoch: int) -> None:
        """Remember ``net``'s current weights as the best, reached at ``epoch`` with validation ``loss``."""
        self.loss, self.state, self.epoch, self.stale = loss, copy.deepcopy(net.state_dict()), epoch, 0

    def update(self, loss: float, net: nn.Module, epoch: int) -> bool:
        """Keep ``net``'s weights if ``loss`` beats the best by more than ``min_delta`` (``True``), else count one
        more stale epoch (``False``)."""
        if self.loss - loss > self.min_delta:
            self.keep(loss, net, epoch)
            return True
        self.stale += 1
        return False


@dataclass(frozen=True)
class TrainingResult:
    """What :meth:`TrainingPlan.fit` did: one ``history`` row per epoch (``epoch``, ``loss``, ``val_loss`` or
    ``None``, ``processes``, ``seconds``), the ``best_epoch`` whose weights the network holds now (0: the untrained
    start; the last epoch without validation data), and the ``device`` it trained on."""

    history: list[dict]
    best_epoch: int
    device: torch.device


@dataclass(frozen=True)
class TrainingPlan:
    """How a Scouter network is trained: its loss and schedule, as options; :meth:`fit` runs it.

    Attributes
    ----------
    epochs, batch_size
        Maximum epochs; cells per batch.
    lr, lr_decay
        Adam learning rate, multiplied by ``lr_decay`` after every epoch.
    loss_gamma, loss_lambda
        ``gamma`` and ``lambda_`` of :func:`~scouter_local.predictors.scouter.network.gears_loss`.
    patience, min_delta
        Stop after ``patience`` epochs without a validation-loss gain above ``min_delta``.
    grad_clip
        Maximum gradient norm.
    seed
        Seed of the batch order (and of the passes of :func:`precise_batchnorm`).
    precise_bn
        Re-estimate the BatchNorm statistics (:func:`precise_batchnorm`) before every evaluation: delta data.
    """

    epochs: int
    batch_size: int
    lr: float
    lr_decay: float
    loss_gamma: float
    loss_lambda: float
    patience: int
    min_delta: float
    grad_clip: float
    seed: int
    precise_bn: bool = False

    def loss(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        """GEARS loss of ``net``'s prediction for ``batch`` (``net`` may be a DDP wrapper)."""
        emb, ctrl, true, mask, ci = batch
        return gears_loss(net(emb, ctrl), true, ctrl, mask, ci, gamma=self.loss_gamma, lambda_=self.loss_lambda)

    def validation_loss(self, net: nn.Module, val_pairs: PairLoader, device: torch.device) -> float:
        """Mean loss of ``net`` (or its DDP wrapper) in eval mode over the batches of ``val_pairs``."""
        net.eval()
        with torch.no_grad():
            return float(np.mean([self.loss(net, b).item() for b in val_pairs.batches(self.batch_size, None, device)]))

    def fit(
        self, net: nn.Module, pairs: PairLoader, val_pairs: PairLoader | None, device: torch.device
    ) -> TrainingResult:
        """Train ``net`` in place on ``pairs``, stopping early on the loss over ``val_pairs`` (none, or fewer than
        two cells: all epochs), and leave it in eval mode holding the best epoch's weights.

        One of several processes (``accelerate launch`` / ``torchrun``) trains through DDP, the batches dealt
        round-robin; the device is then the accelerator's.
        """
        generator = torch.Generator().manual_seed(self.seed)
        # fused: one kernel per step over all parameters (the per-tensor loop took a quarter of a CPU epoch)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, fused=True)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=self.lr_decay)
        acc, model, part = accelerator(device.type), net, (0, 1)
        if acc is not None:
            device, part = acc.device, (acc.process_index, acc.num_processes)
            model, opt = acc.prepare(net.to(acc.device), opt)
        validate = val_pairs is not None and len(val_pairs) > 1
        best = BestWeights(self.min_delta)
        if validate:  # the untrained start (epoch 0) is a candidate too
            best.keep(self._evaluate(net, model, pairs, val_pairs, device), net, 0)
        history: list[dict] = []
        for epoch in range(1, self.epochs + 1):
            t0 = time.perf_counter()
            batches = pairs.batches(self.batch_size, generator, device, part=part)
            loss = self._train_epoch(model, opt, acc, self._progress(batches, len(pairs), epoch, part[1]))
            sched.step()
            row = {"epoch": epoch, "loss": loss, "val_loss": None, "processes": part[1]}
            if validate:
                row["val_loss"] = self._evaluate(net, model, pairs, val_pairs, device)
            row["seconds"] = time.perf_counter() - t0
            history.append(row)
            self._log_epoch(row)
            vl = row["val_loss"]
            if vl is not None and not best.update(vl, net, epoch) and best.stale >= self.patience:
                log.info("early stopping after epoch %d; best val_loss %.4f", epoch, best.loss)
                break
        if best.state is not None:
            net.load_state_dict(best.state)
        elif self.precise_bn:
            precise_batchnorm(net, pairs, batch_size=self.batch_size, seed=self.seed, device=device)
        net.eval()
        return TrainingResult(history, best.epoch if best.state is not None else len(history), device)

    def _evaluate(
        self, net: nn.Module, model: nn.Module, pairs: PairLoader, val_pairs: PairLoader, device: torch.device
    ) -> float:
        """:meth:`validation_loss` of ``model`` (``net`` or its DDP wrapper), after :func:`precise_batchnorm` of
        ``net`` on the training ``pairs`` where the plan asks for it."""
        if self.precise_bn:
            precise_batchnorm(net, pairs, batch_size=self.batch_size, seed=self.seed, device=device)
        return self.validation_loss(model, val_pairs, device)

    def _progress(self, batches: Iterator[Batch], n_cells: int, epoch: int, n_processes: int) -> Iterator[Batch]:
        """``batches`` with a progress bar, shown for epochs of 50 batches or more."""
        return tqdm(
            batches,
            desc=f"epoch {epoch}",
            total=n_cells // (self.batch_size * n_processes),
            unit="batch",
            leave=False,
            disable=n_cells < 50 * self.batch_size,
        )

    def _train_epoch(self, model: nn.Module, opt: torch.optim.Optimizer, acc, batches: Iterable[Batch]) -> float:
        """One gradient step per batch of ``batches``; the mean batch loss over every process's batches.

        ``acc``: the :func:`accelerator` of one of several processes (``model`` is then its DDP wrapper), or
        ``None``."""
        model.train()
        losses = []
        with acc.join_uneven_inputs([model]) if acc is not None else contextlib.nullcontext():
            for batch in batches:
                opt.zero_grad()
                loss = self.loss(model, batch)
                if acc is not None:
                    acc.backward(loss)
                    acc.clip_grad_norm_(model.parameters(), max_norm=self.grad_clip)
                else:
                    loss.backward()
                    nn.utils.clip_grad_norm_(model.parameters(), max_norm=self.grad_clip)
                opt.step()
                losses.append(loss.item())
        total = torch.tensor([sum(losses), len(losses)], dtype=torch.float64)
        if acc is not None:
            total = acc.reduce(total.to(acc.device), "sum").cpu()
        return float(total[0] / total[1])

    def _log_epoch(self, row: dict) -> None:
        vl = row["val_loss"]
        log.info(
            "epoch %d/%d loss %.4f val_loss %s %.1fs",
            row["epoch"],
            self.epochs,
            row["loss"],
            "-" if vl is None else f"{vl:.4f}",
            row["seconds"],
        )
