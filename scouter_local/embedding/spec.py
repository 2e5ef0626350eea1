"""What defines a set's vectors: :class:`EncoderSpec` (model fingerprint, architecture, pooling, prefixes, max tokens,
quantisation, long-text mode), resolved from a MODEL and its folder's own settings, or re-resolved from a stored set.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gene_corpus.errors import InputError
from scouter_local.embedding.models import gguf_folder, model_fingerprint, read_json, resolve_model
from scouter_local.embedding.sets import SET_SOURCES

POOLING_MODES = ("mean", "cls", "last")


QUANTIZE_MODES = ("8bit", "4bit")


#: What happens to texts longer than ``max_tokens``: average of all chunks, or only the first chunk.
LONG_TEXT_MODES = ("chunk", "truncate")


DEFAULT_MAX_TOKENS = 512


_DECODER_SUFFIXES = ("ForCausalLM", "LMHeadModel")


@dataclass(frozen=True)
class EncoderSpec:
    """Everything that determines the vectors an encoder produces (the cache identity), plus load details.

    Attributes
    ----------
    model
        The MODEL as given.
    model_fingerprint
        :func:`model_fingerprint` of its files.
    architecture
        ``model_type`` from its config, ``decoder`` whether it is a causal LM.
    pooling, prefix, query_prefix, max_tokens, quantize
        Pooling mode, text prefixes for documents and queries, token budget per chunk, ``None`` or one of
        :data:`QUANTIZE_MODES`.
    long_texts
        ``chunk`` (average of all chunks of a text longer than ``max_tokens``) or ``truncate`` (its first chunk).
    """

    model: str
    model_fingerprint: str
    architecture: str
    decoder: bool
    pooling: str
    prefix: str
    query_prefix: str
    max_tokens: int
    quantize: str | None
    load_path: str = field(compare=False)
    long_texts: str = "chunk"

    def identity(self) -> dict:
        """The fields that define the vectors (what the cache is keyed on).

        ``long_texts`` enters only when it is not ``chunk``, so the keys of sets embedded before the option
        existed (all chunked) stay the same.
        """
        skip = ("model", "load_path", "architecture", "decoder") + (
            ("long_texts",) if self.long_texts == "chunk" else ()
        )
        return {k: v for k, v in asdict(self).items() if k not in skip}

    def to_dict(self) -> dict:
        return asdict(self)


def _is_decoder(config: dict) -> bool:
    archs = config.get("architectures") or []
    if archs:
        return any(a.endswith(_DECODER_SUFFIXES) for a in archs)
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    kind = config.get("model_type", "")
    return kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def _st_pooling(folder: Path) -> str | None:
    """Pooling mode of a sentence-transformers folder (``1_Pooling/config.json`` or as named in ``modules.json``)."""
    paths = [
        m.get("path", "") for m in read_json(folder / "modules.json") or [] if m.get("type", "").endswith("Pooling")
    ]
    cfg = read_json(folder / (paths[0] if paths else "1_Pooling") / "config.json")
    modes = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_lasttoken": "last"}
    chosen = [mode for key, mode in modes.items() if cfg.get(key)]
    return chosen[0] if chosen else None


def resolve_spec(
    model: str | os.PathLike,
    *,
    pooling: str | None = None,
    prefix: str | None = None,
    query_prefix: str | None = None,
    max_tokens: int | None = None,
    quantize: str | None = None,
    long_texts: str = "chunk",
    allow_download: bool = False,
    trust_remote_code: bool = False,
) -> EncoderSpec:
    """Resolve MODEL and fill every default without loading weights (a GGUF is converted once, see module doc).

    Defaults: pooling from a sentence-transformers ``1_Pooling/config.json``, else ``last`` for decoders and
    ``mean`` for encoders; prefixes from ``config_sentence_transformers.json`` prompts (``query``/``document``
    or ``passage``) else empty, the query prefix ``query: `` when the document prefix is ``passage: `` (E5);
    ``max_tokens`` from ``sentence_bert_config.json`` ``max_seq_length`` else ``min(max_position_embeddings, 512)``.

    Raises
    ------
    InputError
        Unknown pooling/quantize value, a model that needs remote code without ``trust_remote_code``, or bad MODEL.
    """
    if pooling is not None and pooling not in POOLING_MODES:
        raise InputError(f"pooling {pooling!r} is not one of {', '.join(POOLING_MODES)}")
    if quantize is not None and quantize not in QUANTIZE_MODES:
        raise InputError(f"quantize {quantize!r} is not one of {', '.join(QUANTIZE_MODES)}")
    if long_texts not in LONG_TEXT_MODES:
        raise InputError(f"long-text mode {long_texts!r} is not one of {', '.join(LONG_TEXT_MODES)}")
    if max_tokens is not None and max_tokens < 8:
        raise InputError(f"max tokens {max_tokens} is too small; use at least 8")
    source = resolve_model(model, allow_download=allow_download)
    fingerprint = model_fingerprint(source)
    folder = gguf_folder(source, fingerprint) if source.gguf_file else source.path
    config = read_json(folder / "config.json")
    if config.get("auto_map") and not trust_remote_code:
        raise InputError(
            f"model {source.spec} runs its own code (auto_map in config.json); "
            "review it and pass trust_remote_code=True to allow it"
        )
    decoder = _is_decoder(config) or bool(source.gguf_file and config.get("model_type") not in ("bert", "nomic-bert"))
    prompts = read_json(folder / "config_sentence_transformers.json").get("prompts") or {}
    doc_prefix = prefix if prefix is not None else prompts.get("document", prompts.get("passage", ""))
    if query_prefix is None:
        query_prefix = prompts.get("query", "query: " if doc_prefix == "passage: " else doc_prefix)
    st_max = read_json(folder / "sentence_bert_config.json").get("max_seq_length")
    positions = config.get("max_position_embeddings") or DEFAULT_MAX_TOKENS
    return EncoderSpec(
        model=source.spec,
        model_fingerprint=fingerprint,
        architecture=str(config.get("model_type", "unknown")),
        decoder=decoder,
        pooling=pooling or _st_pooling(folder) or ("last" if decoder else "mean"),
        prefix=doc_prefix,
        query_prefix=query_prefix,
        max_tokens=int(max_tokens or st_max or min(positions, DEFAULT_MAX_TOKENS)),
        quantize=quantize,
        load_path=str(folder),
        long_texts=long_texts,
    )


def spec_from_stored(
    stored: dict, *, set_name: str = "", allow_download: bool = False, trust_remote_code: bool = False
) -> EncoderSpec:
    """Re-resolve the encoder an embedding set was made with (its ``spec``), checking the model files are unchanged.

    Raises
    ------
    InputError
        The set was not made by a text model (imported, GO, combined), or the model's files no longer match its
        fingerprint.
    """
    enc = stored.get("encoder")
    if not enc:
        held = SET_SOURCES.get(stored.get("source"), "vectors made without a text model")
        raise InputError(
            f"set {set_name!r} holds {held} and has no model to embed text with; "
            "use a set made by `scouter-local embed`"
        )
    spec = resolve_spec(
        enc["model"],
        pooling=enc["pooling"],
        prefix=enc["prefix"],
        query_prefix=enc["query_prefix"],
        max_tokens=enc["max_tokens"],
        quantize=enc["quantize"],
        long_texts=enc.get("long_texts", "chunk"),
        allow_download=allow_download,
        trust_remote_code=trust_remote_code,
    )
    if spec.model_fingerprint != enc["model_fingerprint"]:
        raise InputError(
            f"model {enc['model']} changed since set {set_name!r} was embedded (fingerprint "
            f"{enc['model_fingerprint']} -> {spec.model_fingerprint}); re-embed into a new set"
        )
    return spec
