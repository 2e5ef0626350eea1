"""Scouter's data loader: perturbed cells paired with control cells, streamed in batches from memory or from a
backed h5ad.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from scouter_local.conditions import CTRL
from scouter_local.data.cells import to_dense
from scouter_local.data.perturbation import PerturbationData


class PairLoader:
    """Perturbed cells of some conditions, each paired with a control cell (Scouter's ``BalancedDataset``).

    Cells are read from :attr:`PerturbationData.cells` batch by batch: in-memory data is shuffled cell by cell;
    backed data is read in shuffled blocks of :attr:`block_rows` consecutive cells, :attr:`fetch_rows` cells at a
    time, shuffled among themselves — so one epoch streams the file once with bounded memory. Control cells come
    from a pool of at most :attr:`max_control_pool` control rows held in memory (in their stored kind).
    """

    block_rows: ClassVar[int] = 64
    fetch_rows: ClassVar[int] = 16384
    max_control_pool: ClassVar[int] = 20000

    def __init__(
        self, data: PerturbationData, embed: Callable[[list[str]], np.ndarray], rng: np.random.RandomState
    ) -> None:
        pert = data.conditions != CTRL
        codes, names = pd.factorize(data.conditions[pert])
        self.cells, self.rows = data.cells, data.rows[pert]
        self.cond_index = torch.as_tensor(codes, dtype=torch.long)
        self.embedding = torch.from_numpy(embed(list(names))) if len(names) else None
        masks = np.zeros((len(names), data.n_genes), dtype=np.float32)
        for i, c in enumerate(names):
            masks[i, data.nonzero_genes[c]] = 1.0
        self.mask = torch.from_numpy(masks)
        if data.is_delta:
            self.ctrl = np.zeros((1, data.n_genes), dtype=np.float32)
        else:
            ctrl_rows = data.rows[~pert]
            if len(ctrl_rows) > self.max_control_pool:
                ctrl_rows = np.sort(rng.choice(ctrl_rows, self.max_control_pool, replace=False))
            self.ctrl = data.cells.read(ctrl_rows)
        self.ctrl_of = np.resize(np.arange(self.ctrl.shape[0]), len(self.rows))
        rng.shuffle(self.ctrl_of)

    def __len__(self) -> int:
        return len(self.rows)

    def batches(
        self,
        batch_size: int,
        generator: torch.Generator | None,
        device: torch.device,
        *,
        part: tuple[int, int] = (0, 1),
    ):
        """Tensors ``(embedding, control, observed, mask, condition id)`` of each batch; shuffled when
        ``generator`` is given. While shuffling, a last partial batch of a fetch is dropped if a full one exists,
        so fewer cells than ``batch_size`` still train (batches of one are skipped: BatchNorm needs two).
        ``part=(rank, n)``: only every ``n``-th batch from the ``rank``-th (one process of several)."""
        rank, n_parts = part
        fetches = self._fetches(batch_size, generator)
        # every process runs the same number of batches: DDP all-reduces the gradients of each backward, and
        # accelerate's join_uneven_inputs does nothing on CPU, so a process with one batch more would wait forever
        total = sum(len(chunks) for _, chunks in fetches)
        last = total - total % n_parts
        k = -1
        for order, chunks in fetches:
            mine = [idx for j, idx in enumerate(chunks, start=k + 1) if j < last and j % n_parts == rank]
            k += len(chunks)
            if mine:
                yield from self._read_batches(order, mine, device)

    def _fetches(self, batch_size: int, generator: torch.Generator | None) -> list[tuple[torch.Tensor, list]]:
        """``(positions, batches)`` of each fetch: the cell positions it reads (whole blocks, in shuffled block
        order and then shuffled among themselves when ``generator`` is given) and those positions cut into
        batches of ``batch_size``, the partial last one and any of one cell left out as :meth:`batches` says."""
        n = len(self)
        block, fetch = (self.block_rows, self.fetch_rows) if self.cells.backed else (1, n)
        starts = torch.arange(0, n, block)
        if generator is not None:
            starts = starts[torch.randperm(len(starts), generator=generator)]
        per_fetch = max(1, fetch // block)
        fetches = []
        for i in range(0, len(starts), per_fetch):
            order = (starts[i : i + per_fetch, None] + torch.arange(block)).flatten()
            order = order[order < n]
            if generator is not None:
                order = order[torch.randperm(len(order), generator=generator)]
            chunks = list(torch.split(order, batch_size))
            if generator is not None and len(chunks) > 1 and len(chunks[-1]) < batch_size:
                chunks = chunks[:-1]
            fetches.append((order, [idx for idx in chunks if len(idx) >= 2]))
        return fetches

    def _read_batches(self, order: torch.Tensor, batches: list[torch.Tensor], device: torch.device):
        """The tensors of :meth:`batches` for ``batches`` (cell positions) of the fetch of positions ``order``:
        backed cells are read once for the whole fetch, in file order."""
        fetched = stored = None
        if self.cells.backed:
            fetched = np.sort(order.numpy())
            stored = self.cells.read(self.rows[fetched])
        for idx in batches:
            pos = idx.numpy()
            true = (
                to_dense(stored[np.searchsorted(fetched, pos)])
                if stored is not None
                else self.cells.dense(self.rows[pos])
            )
            ci = self.cond_index[idx]
            yield (
                self.embedding[ci].to(device),
                torch.from_numpy(to_dense(self.ctrl[self.ctrl_of[pos]])).to(device),
                torch.from_numpy(true).to(device),
                self.mask[ci].to(device),
                ci.to(device),
            )
