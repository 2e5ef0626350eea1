"""FAISS neighbour search: exactness, kinds, candidates, text queries, stale/mismatched indexes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gene_corpus import Corpus
from gene_corpus.errors import InputError
from scouter_local.embedding.pipeline import embed_corpus
from scouter_local.embedding.store import load_embedding_set
from scouter_local.index import NeighborIndex, index_dir, neighbors
from tests._realdata import MINILM
from tests.conftest import copy_db


@pytest.fixture(scope="module")
def db(minilm_db, tmp_path_factory):
    return copy_db(minilm_db, tmp_path_factory.mktemp("index"))


def _brute_force(emb, row, k):
    unit = emb.vectors / np.linalg.norm(emb.vectors, axis=1, keepdims=True)
    sims = unit @ unit[row]
    sims[row] = -np.inf
    order = np.argsort(-sims)[:k]
    return [emb.symbols[i] for i in order], sims[order]


def test_gene_neighbours_are_exact_cosine(db):
    nn = NeighborIndex.open(db, "minilm")
    assert nn.kind == "flat" and (index_dir(db, "minilm") / "index.faiss").is_file()
    found = nn.query_gene("RPL11", k=10)
    symbols, sims = _brute_force(nn.emb, nn.emb.rows()["RPL11"], 10)
    assert [n.symbol for n in found] == symbols and [n.rank for n in found] == list(range(1, 11))
    np.testing.assert_allclose([n.cosine for n in found], sims, atol=1e-5)
    assert sum(n.symbol.startswith(("RPL", "RPS")) for n in found[:5]) >= 3  # ribosomal genes find each other
    assert found[0].name and "RPL11" not in symbols


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_kinds_agree_with_exact(db, kind):
    emb = load_embedding_set(db, "minilm")
    exact = NeighborIndex.build(emb, kind="flat")
    approx = NeighborIndex.build(emb, kind=kind)
    genes = emb.symbols[::25]
    overlap = [
        len({n.symbol for n in a} & {n.symbol for n in b}) / 5
        for a, b in zip(exact.query_genes(genes, 5), approx.query_genes(genes, 5))
    ]
    assert np.mean(overlap) > 0.8
    assert NeighborIndex.build(emb, threshold=10).kind == "hnsw"


def test_candidates_restrict_the_answer(db):
    nn = NeighborIndex.open(db, "minilm")
    trained = nn.emb.symbols[:30]
    unseen = nn.emb.symbols[100:103]
    results = nn.query_genes(unseen, k=5, candidates=trained)
    assert len(results) == 3 and all(len(r) == 5 and {n.symbol for n in r} <= set(trained) for r in results)
    cos = [n.cosine for n in results[0]]
    assert cos == sorted(cos, reverse=True)


def test_gene_resolved_through_corpus_and_unknown_gene_errors(db):
    with Corpus.open(db, read_only=True) as corpus:
        assert corpus.resolve_one("RPL11").entrez_id == 6135
    found = neighbors(db, "minilm", gene="6135", k=3)
    assert len(found) == 3 and found[0].symbol != "RPL11"
    with pytest.raises(InputError, match="did you mean") as info:
        neighbors(db, "minilm", gene="RPL11X", k=3)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="has no vector"):
        neighbors(db, "minilm", gene="TP53", k=3)  # a real gene, but outside the embedded subset


def test_text_query_uses_the_set_model(db):
    with Corpus.open(db, read_only=True) as corpus:
        own = corpus.documents(entrez_ids=[6135])["text"].iloc[0]
    found = neighbors(db, "minilm", text=own, k=3)  # RPL11's own document lands on RPL11 at cosine ~1
    assert found[0].symbol == "RPL11" and found[0].cosine > 0.9999
    found = neighbors(db, "minilm", text="ribosomal protein of the 60S large subunit", k=5)
    assert any(n.symbol.startswith(("RPL", "RPS")) for n in found)


def test_mismatched_index_is_rejected(db, subset, tmp_path):
    own = copy_db(db, tmp_path)
    embed_corpus(own, "centred", MINILM, genes=subset, postprocess="center", progress=False)
    minilm, centred = load_embedding_set(own, "minilm"), load_embedding_set(own, "centred")
    path = NeighborIndex.build(minilm).save(tmp_path / "idx")
    with pytest.raises(InputError, match="fingerprint"):
        NeighborIndex.load(path, centred)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["symbols"] = manifest["symbols"][::-1]
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="other genes"):
        NeighborIndex.load(path, minilm)
    # the index beside the database is rebuilt when the set changed, or refused with rebuild=False
    NeighborIndex.open(own, "minilm").save(index_dir(own, "centred"))
    with pytest.raises(InputError, match="rebuild"):
        NeighborIndex.open(own, "centred", rebuild=False)
    assert NeighborIndex.open(own, "centred").emb.fingerprint == centred.fingerprint
