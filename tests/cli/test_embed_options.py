"""Options of embed / embeddings list / neighbors through the command line, checked against independent
computations: sentence-transformers for prefixed texts, numpy for neighbours, the stored sets for listings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from gene_corpus import Corpus
from scouter_local.cli import main
from scouter_local.embedding.models import resolve_model
from scouter_local.embedding.store import load_embedding_set
from scouter_local.index import index_dir
from tests._realdata import MINILM, embed_args
from tests.conftest import copy_db

PASSAGE, QUERY = "passage: ", "query: "


def _run(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _embed(db, set_name: str, genes, *options) -> str:
    return _run(*embed_args(db, set_name, genes, *options))


@pytest.fixture(scope="module")
def short_genes(corpus_db, subset) -> pd.DataFrame:
    """Six genes of the subset with the shortest documents (one chunk each: no chunk averaging to model)."""
    with Corpus.open(corpus_db, read_only=True) as corpus:
        docs = corpus.documents(entrez_ids=subset)
    return docs.assign(n=docs["text"].str.len()).nsmallest(6, "n").sort_values("entrez_id")


@pytest.fixture(scope="module")
def sentence_transformer():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(resolve_model(MINILM).path), device="cpu")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_embeddings_list_names_each_set_with_its_genes_dim_and_model(minilm_db, short_genes, tmp_path):
    db = copy_db(minilm_db, tmp_path)
    genes = tmp_path / "genes.txt"
    genes.write_text("\n".join(short_genes["symbol"]) + "\n")
    _embed(db, "few", genes, "--postprocess", "center")
    listed = {r["name"]: r for r in json.loads(_run("embeddings", "list", "--db", db, "--json"))}
    assert set(listed) == {"minilm", "few"}
    for name, post in (("minilm", "none"), ("few", "center")):
        emb = load_embedding_set(db, name)
        row = listed[name]
        assert (row["genes"], row["dim"], row["postprocess"], row["fingerprint"]) == (
            len(emb.symbols),
            384,
            post,
            emb.fingerprint,
        )
        assert row["model"] == MINILM
    assert listed["few"]["genes"] == 6 and listed["minilm"]["genes"] > 100
    table = _run("embeddings", "list", "--db", db).splitlines()
    assert table[0].split()[:4] == ["name", "genes", "dim", "postprocess"]
    assert [line.split()[:4] for line in table[1:]] == [
        ["few", "6", "384", "center"],
        ["minilm", str(listed["minilm"]["genes"]), "384", "none"],
    ]


def test_prefix_changes_vectors_is_recorded_and_text_queries_use_the_query_prefix(
    minilm_db, short_genes, sentence_transformer, tmp_path
):
    db = copy_db(minilm_db, tmp_path)
    genes = tmp_path / "genes.txt"
    genes.write_text("\n".join(short_genes["symbol"]) + "\n")
    _embed(db, "e5style", genes, "--prefix", PASSAGE, "--query-prefix", QUERY)
    emb = load_embedding_set(db, "e5style")
    assert emb.spec["encoder"]["prefix"] == PASSAGE and emb.spec["encoder"]["query_prefix"] == QUERY
    texts = dict(zip(short_genes["symbol"], short_genes["text"]))
    expected = sentence_transformer.encode([PASSAGE + texts[s] for s in emb.symbols])
    np.testing.assert_allclose(_unit(emb.vectors), _unit(expected), atol=2e-5)  # the prefix is in the text
    plain = load_embedding_set(minilm_db, "minilm")
    rows = plain.rows()
    cosine = (_unit(emb.vectors) * _unit(plain.vectors[[rows[s] for s in emb.symbols]])).sum(1)
    assert cosine.max() < 0.9999  # ... and it changes every vector (by 0.003-0.006 in cosine here)

    text = "structural constituent of the ribosome"
    hits = json.loads(_run("neighbors", "--db", db, "--set", "e5style", "--text", text, "-k", "6", "--json"))
    sims = {p: _unit(emb.vectors) @ _unit(sentence_transformer.encode([p + text])[0]) for p in (QUERY, PASSAGE)}
    np.testing.assert_allclose([h["cosine"] for h in hits], np.sort(sims[QUERY])[::-1], atol=1e-4)
    assert [h["symbol"] for h in hits] == [emb.symbols[i] for i in np.argsort(-sims[QUERY])]
    assert not np.allclose([h["cosine"] for h in hits], np.sort(sims[PASSAGE])[::-1], atol=1e-4)


def test_shards_then_plain_run_merge_into_the_unsharded_vectors(corpus_db, minilm_db, short_genes, tmp_path):
    db = copy_db(corpus_db, tmp_path)
    genes = tmp_path / "genes.txt"
    genes.write_text("\n".join(short_genes["symbol"]) + "\n")
    staged = [json.loads(_embed(db, "sharded", genes, "--shard", f"{i}/2", "--json")) for i in range(2)]
    assert [(r["shard"], r["computed"]) for r in staged] == [("0/2", 3), ("1/2", 3)]
    assert json.loads(_run("embeddings", "list", "--db", db, "--json")) == []  # staged only, nothing stored yet
    merged = json.loads(_embed(db, "sharded", genes, "--json"))
    assert (merged["merged"], merged["computed"], merged["shard"]) == (6, 0, None)
    assert not list((db.parent / f"{db.name}.shards" / "sharded").glob("*.parquet"))
    sharded, whole = load_embedding_set(db, "sharded"), load_embedding_set(minilm_db, "minilm")
    rows = whole.rows()
    assert sorted(sharded.symbols) == sorted(short_genes["symbol"])
    np.testing.assert_allclose(sharded.vectors, whole.vectors[[rows[s] for s in sharded.symbols]], atol=2e-5)


def test_index_kind_is_recorded_and_flat_and_hnsw_agree(minilm_db, tmp_path):
    db = copy_db(minilm_db, tmp_path)
    emb = load_embedding_set(db, "minilm")
    unit = _unit(emb.vectors)
    manifest = index_dir(db, "minilm") / "manifest.json"
    genes = ["RPL11", "RPS19", emb.symbols[0], emb.symbols[len(emb.symbols) // 2]]
    answers = {}
    for kind in ("flat", "hnsw", "auto"):
        answers[kind] = {
            g: json.loads(
                _run("neighbors", "--db", db, "--set", "minilm", g, "-k", "5", "--index-kind", kind, "--json")
            )
            for g in genes
        }
        # auto keeps the index that is there (hnsw after the hnsw run)
        assert json.loads(manifest.read_text())["kind"] == ("flat" if kind == "flat" else "hnsw")
    rows = emb.rows()
    for gene in genes:
        sims = unit @ unit[rows[gene]]
        sims[rows[gene]] = -np.inf
        exact = [emb.symbols[i] for i in np.argsort(-sims)[:5]]
        assert [h["symbol"] for h in answers["flat"][gene]] == exact
        assert [h["symbol"] for h in answers["hnsw"][gene]] == exact  # 150 genes: HNSW finds the exact top 5
        assert answers["auto"][gene] == answers["hnsw"][gene]
