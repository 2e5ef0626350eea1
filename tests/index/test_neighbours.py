"""FAISS neighbours of a synthetic set (exact cosine, kinds, candidates, save/load) and of the tiny corpus's set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gene_corpus.errors import InputError
from scouter_local.index import NeighborIndex, index_dir, neighbors
from tests._synthetic import embedding_set
from tests.conftest import copy_db

GENES = [f"G{i}" for i in range(300)]


@pytest.fixture(scope="module")
def emb():
    return embedding_set(GENES, dim=12, seed=1)


def _exact(emb, gene: str, k: int, among=None) -> list[str]:
    unit = emb.vectors / np.linalg.norm(emb.vectors, axis=1, keepdims=True)
    row = emb.rows()[gene]
    sims = unit @ unit[row]
    sims[row] = -np.inf
    if among is not None:
        sims[[i for i, s in enumerate(emb.symbols) if s not in among]] = -np.inf
    return [emb.symbols[i] for i in np.argsort(-sims)[:k]]


def test_flat_index_is_exact_cosine(emb):
    nn = NeighborIndex.build(emb, kind="flat")
    found = nn.query_gene("G7", k=5)
    assert [n.symbol for n in found] == _exact(emb, "G7", 5) and [n.rank for n in found] == [1, 2, 3, 4, 5]
    unit = emb.vectors / np.linalg.norm(emb.vectors, axis=1, keepdims=True)
    rows = emb.rows()
    np.testing.assert_allclose(
        [n.cosine for n in found], [unit[rows["G7"]] @ unit[rows[n.symbol]] for n in found], atol=1e-5
    )


def test_approximate_kinds_find_most_exact_neighbours(emb):
    genes = GENES[::30]
    for kind in ("hnsw", "ivf"):
        approx = NeighborIndex.build(emb, kind=kind).query_genes(genes, 5)
        overlap = np.mean([len({n.symbol for n in a} & set(_exact(emb, g, 5))) / 5 for g, a in zip(genes, approx)])
        assert overlap > 0.8, kind
    assert NeighborIndex.build(emb, threshold=100).kind == "hnsw" and NeighborIndex.build(emb).kind == "flat"


def test_candidates_restrict_the_answer(emb):
    trained = GENES[:40]
    (found,) = NeighborIndex.build(emb).query_genes(["G250"], k=4, candidates=trained)
    assert [n.symbol for n in found] == _exact(emb, "G250", 4, among=set(trained))


def test_saved_index_loads_only_for_its_set(emb, tmp_path):
    path = NeighborIndex.build(emb).save(tmp_path / "idx")
    assert [n.symbol for n in NeighborIndex.load(path, emb).query_gene("G3", 3)] == _exact(emb, "G3", 3)
    with pytest.raises(InputError, match="fingerprint"):
        NeighborIndex.load(path, embedding_set(GENES, dim=12, seed=2))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["symbols"] = manifest["symbols"][::-1]
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="other genes"):
        NeighborIndex.load(path, emb)


def test_neighbours_of_a_corpus_gene(tiny_db, tmp_path):
    db = copy_db(tiny_db, tmp_path)
    by_alias = neighbors(db, "synthetic", gene="OLD3", k=3)  # resolved through the corpus: OLD3 is SYN3
    by_id = neighbors(db, "synthetic", gene="903", k=3)
    assert [n.symbol for n in by_alias] == [n.symbol for n in by_id] and "SYN3" not in {n.symbol for n in by_id}
    assert (index_dir(db, "synthetic") / "manifest.json").is_file()
    with pytest.raises(InputError, match="did you mean"):
        neighbors(db, "synthetic", gene="SYN33", k=3)
    with pytest.raises(InputError, match="holds embeddings imported from a file and has no model to embed text with"):
        neighbors(db, "synthetic", text="a kinase", k=3)
