"""Fixtures of the embedding tests: the real MiniLM encoder and a GO set (real GO files) beside the MiniLM set.

The SmolLM2 GGUF is converted once into the user's scouter-local cache (``$SCOUTER_LOCAL_CACHE``, default
``~/.cache/scouter-local``), like any hub cache: the first run pays about a minute, later runs reuse it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._realdata import MINILM
from tests.conftest import copy_db

GO_TEST_DIM = 64


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
    """The real MiniLM encoder on CPU."""
    from scouter_local.embedding.encoder import Encoder
    from scouter_local.embedding.spec import resolve_spec

    return Encoder(resolve_spec(MINILM), device="cpu")
