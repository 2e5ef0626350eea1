"""How texts are fed to the encoder: forward passes bounded by padded tokens and rows, genes per written group, the
progress bar in genes.

Light on purpose (no torch, pandas or numpy at import): the command line reads :data:`DEFAULT_BATCH_TOKENS` for its
``--help``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from gene_corpus.errors import InputError

if TYPE_CHECKING:
    import numpy as np


#: Padded tokens per forward pass (rows x longest row); chunks are length-sorted so padding stays small.
DEFAULT_BATCH_TOKENS = 8192


def check_batching(batch_size: int | None, batch_tokens: int) -> None:
    """A batch size below 1 (``None`` is no bound) or a token budget below 1 is an :class:`InputError`."""
    if batch_size is not None and batch_size < 1 or batch_tokens < 1:
        raise InputError(f"batch size {batch_size} and batch tokens {batch_tokens} must be at least 1")


@dataclasses.dataclass(frozen=True)
class Batching:
    """How a run feeds its documents to the encoder (checked on creation, before any model is loaded).

    Attributes
    ----------
    batch_size, batch_tokens
        At most this many chunks (``None``: no bound) and padded tokens per forward pass, see
        :meth:`~scouter_local.embedding.encoder.Encoder.encode`.
    write_every
        Genes encoded (and written, in one transaction) per group.
    progress
        Show a bar in genes over the run.
    """

    batch_size: int | None = None
    batch_tokens: int = DEFAULT_BATCH_TOKENS
    write_every: int = 256
    progress: bool = True

    def __post_init__(self) -> None:
        check_batching(self.batch_size, self.batch_tokens)


def token_batches(lengths: np.ndarray, batch_tokens: int, batch_size: int | None = None) -> list[slice]:
    """Consecutive batches over lengths sorted longest first, each at most ``batch_tokens`` padded tokens.

    Parameters
    ----------
    lengths
        ``(n,)`` token counts in non-increasing order.
    batch_tokens
        Bound on rows x first (longest) row of a batch; a row longer than it forms a batch of its own.
    batch_size
        Bound on rows per batch (``None``: none).

    Returns
    -------
    Slices covering ``0..n`` in order.
    """
    check_batching(batch_size, batch_tokens)
    batches, start = [], 0
    while start < len(lengths):
        rows = max(1, batch_tokens // max(1, int(lengths[start])))
        stop = min(len(lengths), start + min(rows, batch_size or rows))
        batches.append(slice(start, stop))
        start = stop
    return batches


def progress_bar(total: int, desc: str, *, disable: bool = False):
    """A tqdm bar counting genes (fractional updates shown rounded) with genes/s."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        unit="gene",
        desc=desc,
        disable=disable,
        bar_format="{l_bar}{bar}| {n:.0f}/{total} [{elapsed}<{remaining}, {rate_fmt}]",
    )
