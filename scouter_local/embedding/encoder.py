"""The loaded text encoder: tokenising and chunking long texts, pooling, bitsandbytes quantisation, devices (CPU,
CUDA, ``device_map='auto'``). How chunks are grouped into forward passes is :mod:`~scouter_local.embedding.batching`.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import warnings
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from gene_corpus.errors import InputError, first_line
from scouter_local.embedding.batching import DEFAULT_BATCH_TOKENS, progress_bar, token_batches
from scouter_local.embedding.spec import EncoderSpec
from scouter_local.runtime import settings

DTYPES = ("auto", "float32", "float16", "bfloat16")


@dataclass
class EncodeStats:
    """Counters of one :meth:`Encoder.encode` call: texts, those split into chunks or truncated, chunks run,
    tokens run (padding excluded), padded tokens run (rows x longest row, summed over forward passes)."""

    texts: int = 0
    chunked: int = 0
    truncated: int = 0
    chunks: int = 0
    tokens: int = 0
    padded_tokens: int = 0


def _pick_dtype(dtype: str, device: str):
    import torch

    if dtype not in DTYPES:
        raise InputError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if dtype != "auto":
        return getattr(torch, dtype)
    if device == "cpu":
        return torch.float32
    if device.startswith("cuda") or device == "auto" and torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


class Encoder:
    """A loaded text encoder that turns texts into pooled, chunk-averaged vectors.

    Parameters
    ----------
    spec
        From :func:`resolve_spec`.
    device
        ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto`` (``device_map="auto"`` through accelerate, for models
        larger than one device); ``None`` picks CUDA when available, else CPU.
    dtype
        ``auto`` = fp32 on CPU, bf16 (fp16 without bf16 support) on CUDA.
    threads
        Torch intra-op threads on CPU (default ``settings.threads``, :mod:`scouter_local.runtime`).
    trust_remote_code
        Passed to transformers (already checked by :func:`resolve_spec`).

    Notes
    -----
    Texts are split into chunks of at most ``spec.max_tokens`` tokens (prefix and special tokens included) at
    token boundaries; the vector of a chunked text is the token-count-weighted mean of its chunk vectors
    (``spec.long_texts == "truncate"`` keeps only the first chunk). Chunks are sorted by length and run in
    ``torch.inference_mode`` in batches of at most ``batch_tokens`` padded tokens (short chunks share a forward
    pass with many others; neighbours in length order pad little). Decoders are padded on the left with the EOS (or
    UNK) token as pad token and get position ids that ignore the padding, so ``last`` is each text's last token.
    """

    def __init__(
        self,
        spec: EncoderSpec,
        *,
        device: str | None = None,
        dtype: str = "auto",
        threads: int | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.spec = spec
        self.device = device if device == "auto" else settings.torch_device(device)
        settings.apply_threads(threads)
        self.dtype = _pick_dtype(dtype, self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(spec.load_path, trust_remote_code=trust_remote_code)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        if self.tokenizer.pad_token is None:
            raise InputError(f"model {spec.model} has no pad, EOS or UNK token to pad batches with")
        kwargs: dict = {"dtype": self.dtype, "trust_remote_code": trust_remote_code}
        if spec.quantize:
            kwargs["quantization_config"] = self._bnb_config(spec.quantize)
            kwargs["device_map"] = (
                "auto" if self.device == "auto" else {"": 0 if self.device == "cuda" else self.device}
            )
        elif self.device == "auto":
            kwargs["device_map"] = "auto"
        try:
            model = AutoModel.from_pretrained(spec.load_path, **kwargs)
        except pickle.UnpicklingError as exc:  # torch's weights-only loader refused objects that are not tensors
            raise InputError(
                f"model {spec.model}: refused its weights file, a pickle holding more than tensors (it could run "
                "code when loaded); use a copy of the model with model.safetensors"
            ) from exc
        except (ImportError, ValueError, RuntimeError, OSError, EOFError) as exc:
            raise InputError(
                f"could not load model {spec.model} ({spec.quantize or 'unquantised'}, {self.device}): "
                f"{first_line(exc)}"
            ) from exc
        if getattr(model.config, "is_encoder_decoder", False):
            model = model.get_encoder()
        if not spec.quantize and self.device != "auto":
            model = model.to(self.device)
        self.model = model.eval()
        self.input_device = next(model.parameters()).device
        self.dim = int(model.config.hidden_size)
        self._special = len(self.tokenizer("", add_special_tokens=True)["input_ids"])
        self.stats = EncodeStats()

    def _bnb_config(self, quantize: str):
        import torch
        from transformers import BitsAndBytesConfig

        compute = torch.float32 if self.dtype == torch.float32 else self.dtype
        if quantize == "8bit":
            return BitsAndBytesConfig(load_in_8bit=True)
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute)

    # -------------------------------------------------------------------------------------- chunking
    def _pieces(self, texts: Sequence[str], prefix: str) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
        """Token ids of every chunk, the text each belongs to ``(n_chunks,)`` and its token count ``(n_chunks,)``."""
        budget = (
            self.spec.max_tokens - self._special - len(self.tokenizer(prefix, add_special_tokens=False)["input_ids"])
        )
        if budget < 4:
            raise InputError(f"max tokens {self.spec.max_tokens} leaves no room for text after the prefix {prefix!r}")
        with _quiet_transformers():  # whole texts exceed the model length here on purpose; they are chunked below
            body = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        piece_texts: list[str] = []
        owner: list[int] = []
        for i, (text, offsets) in enumerate(zip(texts, body["offset_mapping"])):
            if len(offsets) <= budget:
                piece_texts.append(prefix + text)
                owner.append(i)
                continue
            if self.spec.long_texts == "truncate":
                self.stats.truncated += 1
                piece_texts.append(prefix + text[offsets[0][0] : offsets[budget - 1][1]])
                owner.append(i)
                continue
            self.stats.chunked += 1
            for start in range(0, len(offsets), budget):
                span = offsets[start : start + budget]
                piece_texts.append(prefix + text[span[0][0] : span[-1][1]])
                owner.append(i)
        ids = self.tokenizer(piece_texts, add_special_tokens=True, truncation=True, max_length=self.spec.max_tokens)[
            "input_ids"
        ]
        return ids, np.asarray(owner, dtype=np.int64), np.asarray([len(x) for x in ids], dtype=np.float64)

    def _batch(self, ids: list[list[int]]):
        import torch

        width = max(len(x) for x in ids)
        pad = self.tokenizer.pad_token_id
        left = self.spec.decoder
        input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, seq in enumerate(ids):
            cols = slice(width - len(seq), width) if left else slice(0, len(seq))
            input_ids[row, cols] = torch.tensor(seq)
            mask[row, cols] = 1
        batch = {"input_ids": input_ids.to(self.input_device), "attention_mask": mask.to(self.input_device)}
        if left:
            batch["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0).to(self.input_device)
        return batch

    def _pool(self, hidden, mask):
        import torch

        mask = mask.bool()
        if self.spec.pooling == "cls":
            return hidden[:, 0]
        if self.spec.pooling == "last":
            if self.spec.decoder:  # left padded: the last column is every row's last token
                return hidden[:, -1]
            return hidden[torch.arange(hidden.shape[0]), mask.sum(-1) - 1]
        summed = hidden.masked_fill(~mask[..., None], 0).sum(1)
        return summed / mask.sum(-1, keepdim=True)

    # -------------------------------------------------------------------------------------- encode
    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        query: bool = False,
        progress: bool = False,
        bar=None,
    ) -> np.ndarray:
        """Embed texts.

        Parameters
        ----------
        texts
            ``n`` texts (the document prefix, or with ``query=True`` the query prefix, is prepended).
        batch_size
            At most this many chunks per forward pass (``None``: as many as ``batch_tokens`` allows).
        batch_tokens
            At most this many padded tokens (chunks x longest chunk) per forward pass; a chunk longer than this
            runs alone.
        progress
            Show a tqdm bar in genes (a chunk advances it by its share of the text) and genes/s.
        bar
            An open tqdm bar to advance instead (one bar over several calls).

        Returns
        -------
        ``(n, dim)`` float32 array, not normalised. ``self.stats`` counts texts, chunked texts, chunks and tokens.
        """
        import torch

        self.stats = EncodeStats(texts=len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        if not len(texts):
            return out.astype(np.float32)
        ids, owner, weight = self._pieces(texts, self.spec.query_prefix if query else self.spec.prefix)
        self.stats.chunks, self.stats.tokens = len(ids), int(weight.sum())
        share = 1.0 / np.bincount(owner, minlength=len(texts))[owner]  # each chunk is this fraction of its text
        order = np.argsort(-weight, kind="stable")
        batches = token_batches(weight[order].astype(np.int64), batch_tokens, batch_size)
        self.stats.padded_tokens = int(sum(weight[order[b.start]] * (b.stop - b.start) for b in batches))
        with contextlib.ExitStack() as stack:
            if bar is None:
                bar = stack.enter_context(progress_bar(len(texts), "Embedding", disable=not progress))
            stack.enter_context(torch.inference_mode())
            stack.enter_context(warnings.catch_warnings())
            warnings.filterwarnings("ignore", message=".*inputs will be cast from.*")
            for rows in (order[b] for b in batches):
                batch = self._batch([ids[r] for r in rows])
                hidden = self.model(**batch).last_hidden_state
                pooled = self._pool(hidden, batch["attention_mask"]).float().cpu().numpy()
                np.add.at(out, owner[rows], pooled * weight[rows, None])
                bar.update(float(share[rows].sum()))
        out /= np.bincount(owner, weights=weight, minlength=len(texts))[:, None]
        return out.astype(np.float32)


@dataclass(frozen=True)
class LoadOptions:
    """How :class:`Encoder` loads a model: ``device``, ``dtype`` and ``trust_remote_code`` (see there)."""

    device: str | None = None
    dtype: str = "auto"
    trust_remote_code: bool = False

    def encoder(self, spec: EncoderSpec) -> Encoder:
        """The model of ``spec`` loaded with these options."""
        return Encoder(spec, device=self.device, dtype=self.dtype, trust_remote_code=self.trust_remote_code)

    def on_rank(self, rank: int) -> LoadOptions:
        """These options for process ``rank`` of ``accelerate launch`` / ``torchrun`` (``WORLD_SIZE`` set): with no
        device chosen and CUDA present, the process's own GPU ``cuda:LOCAL_RANK`` (``cuda:rank`` without it)."""
        if "WORLD_SIZE" not in os.environ or self.device is not None:
            return self
        import torch

        if not torch.cuda.is_available():
            return self
        return replace(self, device=f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}")


@contextlib.contextmanager
def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
