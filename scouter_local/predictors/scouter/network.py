"""Scouter's network (no AnnData): an MLP encoder of a control cell, an MLP generator of [encoding, perturbation
embedding], and GEARS's autofocus + direction-aware loss.
"""

from __future__ import annotations

import torch
from torch import nn


class ScouterNet(nn.Module):
    """Scouter's network: encoder of a control cell, generator of [encoding, perturbation embedding].

    Parameters
    ----------
    n_genes
        Readout genes (input and output width).
    embedding_dim
        Width of the summed gene embedding.
    encoder
        Hidden widths of the encoder, then its output width: ``(2048, 512, 64)``.
    generator
        Hidden widths of the generator: ``(2048,)``.
    use_control
        ``False`` for delta data: every control input is the zero vector, so there is no encoder (an encoder of a
        constant input carries no information, and its BatchNorm layers, seeing constant batches, would divide
        by a running variance that decays to 0 and turn prediction-time encodings into noise).
    """

    def __init__(
        self,
        n_genes: int,
        embedding_dim: int,
        encoder: tuple[int, ...] = (2048, 512, 64),
        generator: tuple[int, ...] = (2048,),
        *,
        use_control: bool = True,
    ) -> None:
        super().__init__()
        self.encoder = _mlp(n_genes, encoder[:-1], encoder[-1]) if use_control else None
        self.generator = _mlp(embedding_dim + (encoder[-1] if use_control else 0), generator, n_genes)
        if not use_control:  # output = offset (the training mean delta, set by the caller) + a residual, 0 at start
            self.register_buffer("offset", torch.zeros(n_genes))
            nn.init.zeros_(self.generator[-1].weight)
            nn.init.zeros_(self.generator[-1].bias)

    def forward(self, perturbation: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
        """``perturbation`` ``(batch, dim)`` summed embeddings, ``control`` ``(batch, n_genes)`` →
        ``(batch, n_genes)``."""
        if self.encoder is None:
            return self.offset + self.generator(perturbation)
        return self.generator(torch.cat([perturbation, self.encoder(control)], dim=-1))


def _mlp(n_in: int, hidden: tuple[int, ...], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, h), nn.BatchNorm1d(h), nn.SELU()]
        n_in = h
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def gears_loss(
    pred: torch.Tensor,
    true: torch.Tensor,
    ctrl: torch.Tensor,
    mask: torch.Tensor,
    cond_index: torch.Tensor,
    *,
    gamma: float,
    lambda_: float,
) -> torch.Tensor:
    """GEARS autofocus + direction-aware loss, averaged per condition over its nonzero genes, then over conditions.

    Parameters
    ----------
    pred, true, ctrl
        ``(batch, n_genes)`` predicted, observed and paired control expression.
    mask
        ``(batch, n_genes)`` 1 where the gene is nonzero in the cell's condition.
    cond_index
        ``(batch,)`` condition id of each cell.
    """
    per_gene = (true - pred).abs() ** (2 + gamma) + lambda_ * (torch.sign(true - ctrl) - torch.sign(pred - ctrl)) ** 2
    _, inverse, counts = torch.unique(cond_index, return_inverse=True, return_counts=True)
    n_genes = mask.sum(dim=1).clamp(min=1)
    weight = 1.0 / (counts[inverse] * n_genes * len(counts))
    return (per_gene * mask * weight[:, None]).sum()
