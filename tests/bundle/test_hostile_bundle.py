"""The bundle trusts nothing it carries (issue #21): an emptied manifest, a file the manifest does not list, a wheel
whose hash is not in the lock files are refused before anything is installed; the installer prints the manifest's own
SHA-256 first, the digest to compare out of band with the one printed at build time, and refuses a bundle whose
manifest is not the one named by ``--manifest-sha256``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from scouter_local.bundle.install import Refused, check_manifest, sha256_file
from scouter_local.cli import main

BASE = Path(sys.prefix)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """A small update bundle (scouter-local's wheel only) and the manifest digest the build printed."""
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    result = CliRunner().invoke(main, ["bundle", "--out", str(out), "--no-deps", "--models", "none"])
    assert result.exit_code == 0, result.output
    return out, re.search(r"MANIFEST\.sha256 SHA-256: ([0-9a-f]{64})", result.output)[1]


@pytest.fixture
def bundle(built, tmp_path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(built[0], copy)
    return copy


def _rehash_manifest(bundle: Path) -> None:
    """Rewrite MANIFEST.sha256 consistently with the files as they are now (what a careful tamperer does)."""
    lines = (bundle / "MANIFEST.sha256").read_text().splitlines()
    names = [line.split("  ", 1)[1] for line in lines]
    (bundle / "MANIFEST.sha256").write_text("".join(f"{sha256_file(bundle / n)}  {n}\n" for n in names))


def _swap_wheel(bundle: Path) -> Path:
    """Put a wheel with other code under the wheel's name."""
    wheel = next((bundle / "wheels").glob("*.whl"))
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("scouter_local/_swapped.py", "print('not the code that was built')\n")
    return wheel


def _install(bundle: Path, venv: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = ["bash", str(bundle / "install.sh"), str(venv), "--base", str(BASE), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_emptied_manifest_refused(bundle, tmp_path):
    """An emptied MANIFEST.sha256 used to install ("checked 0 files")."""
    (bundle / "MANIFEST.sha256").write_text("")
    with pytest.raises(Refused, match="lists 0 files"):
        check_manifest(bundle)
    proc = _install(bundle, tmp_path / "venv")
    assert proc.returncode == 1 and proc.stderr.startswith("error: MANIFEST.sha256 lists 0 files"), proc.stderr
    assert "checked 0 files" not in proc.stdout and not (tmp_path / "venv").exists()


def test_file_not_in_the_manifest_refused(bundle):
    (bundle / "wheels" / "extra-1.0-py3-none-any.whl").write_bytes(b"PK")
    with pytest.raises(Refused, match="wheels/extra-1.0-py3-none-any.whl is not listed"):
        check_manifest(bundle)


def test_swapped_wheel_with_a_rehashed_manifest_refused_by_the_lock(bundle):
    """A wheel swapped and the manifest consistently re-hashed used to install and run the swapped code."""
    wheel = _swap_wheel(bundle)
    _rehash_manifest(bundle)
    with pytest.raises(Refused, match=f"wheels/{wheel.name} is not in requirements.lock"):
        check_manifest(bundle)


def test_manifest_digest_printed_first_and_compared_when_given(built, bundle, tmp_path):
    """A bundle rewritten consistently (wheel, lock, manifest) can only be caught by the manifest's own digest: the
    installer prints it before anything else, and refuses a bundle whose digest is not the one the build printed."""
    _, printed_at_build = built
    wheel = _swap_wheel(bundle)
    lock = bundle / "requirements.lock"
    lock.write_text(re.sub(r"sha256:[0-9a-f]{64}", f"sha256:{sha256_file(wheel)}", lock.read_text()))
    _rehash_manifest(bundle)
    check_manifest(bundle)  # consistent: nothing inside the bundle can tell
    proc = _install(bundle, tmp_path / "venv", "--manifest-sha256", printed_at_build)
    now = hashlib.sha256((bundle / "MANIFEST.sha256").read_bytes()).hexdigest()
    assert proc.stdout.splitlines()[0].startswith(f"MANIFEST.sha256 SHA-256: {now}"), proc.stdout
    assert proc.returncode == 1 and f"not {printed_at_build} as the build printed" in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and not (tmp_path / "venv").exists()


def test_untouched_bundle_passes_with_its_digest(built, bundle):
    _, printed_at_build = built
    assert sha256_file(bundle / "MANIFEST.sha256") == printed_at_build
    files, _ = check_manifest(bundle)
    assert files == len((bundle / "MANIFEST.sha256").read_text().splitlines())
