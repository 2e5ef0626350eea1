"""GO-annotation and combined embedding sets on the real GO files and real MiniLM vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gene_corpus import Corpus
from gene_corpus.errors import InputError
from scouter_local.cli import main
from scouter_local.embedding import knowledge, store
from scouter_local.embedding.exchange import export_embeddings
from scouter_local.embedding.knowledge import combine_sets, go_embedding_set, go_gene_terms
from scouter_local.embedding.store import load_embedding_set
from scouter_local.index import NeighborIndex
from tests.conftest import copy_db

from .conftest import GO_TEST_DIM


def _run(*args: str):
    return CliRunner().invoke(main, list(map(str, args)))


def _drop_annotations(db, n_genes: int) -> list[int]:
    """A curator's re-import: the first ``n_genes`` annotated genes lose their GO annotations."""
    with Corpus.open(db) as corpus:
        ids = [
            r[0]
            for r in corpus.con.execute(
                "SELECT DISTINCT entrez_id FROM go_annotations ORDER BY entrez_id LIMIT ?", [n_genes]
            ).fetchall()
        ]
        corpus.con.execute("DELETE FROM go_annotations WHERE list_contains(?, entrez_id)", [ids]).fetchall()
    return ids


def test_terms_are_propagated_to_their_ancestors(go_db):
    with Corpus.open(go_db, read_only=True) as corpus:
        pairs = go_gene_terms(corpus, ["BP"])
        direct = corpus.go_annotations("BP")
    tp53 = set(pairs.loc[pairs["entrez_id"] == 7157, "go_id"])
    assert set(direct.loc[direct["entrez_id"] == 7157, "go_id"]) <= tp53
    # apoptotic process (GO:0006915) is_a programmed cell death (GO:0012501) is_a cell death (GO:0008219)
    assert {"GO:0006915", "GO:0012501", "GO:0008219"} <= tp53
    assert "GO:0008150" not in tp53  # the BP root says nothing and is dropped
    assert len(pairs) > 3 * len(direct)


def test_go_set_neighbours_share_go_terms_far_more_than_random(go_db, tmp_path):
    db = copy_db(go_db, tmp_path)
    emb = load_embedding_set(db, "go")
    assert emb.dim == GO_TEST_DIM and len(emb.symbols) > 19000 and emb.spec["source"] == "go"
    np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, atol=1e-5)
    with Corpus.open(db, read_only=True) as corpus:
        bp = corpus.go_annotations("BP").groupby("entrez_id")["go_id"].apply(set).to_dict()
    rng = np.random.default_rng(0)
    annotated = np.array([e for e in emb.entrez_ids if e in bp])
    queries = rng.choice(annotated, 300, replace=False)
    hits = NeighborIndex.open(db, "go").query_genes([str(q) for q in queries], 10)
    share = np.mean([bool(bp[q] & bp.get(n.entrez_id, set())) for q, row in zip(queries, hits) for n in row])
    a, b = rng.choice(annotated, 3000), rng.choice(annotated, 3000)
    random_share = np.mean([bool(bp[x] & bp[y]) for x, y in zip(a, b) if x != y])
    assert share > 0.4 and share > 5 * random_share, (share, random_share)


def _cc_set(db) -> str:
    """A small GO set (cellular component only, 16-d: fast to recompute) named ``go_cc``."""
    go_embedding_set(db, "go_cc", dim=16, ontologies=["CC"], progress=False)
    return "go_cc"


def test_go_set_is_cached_and_recomputed_when_annotations_change(go_db, tmp_path, monkeypatch):
    db = copy_db(go_db, tmp_path)
    before = load_embedding_set(db, _cc_set(db))
    real_vectors = knowledge.go_vectors

    def must_not_run(*args, **kwargs):
        raise AssertionError("a cached GO set was recomputed")

    monkeypatch.setattr(knowledge, "go_vectors", must_not_run)
    result = _run("embeddings", "go", "--db", db, "--set", "go_cc", "--dim", 16, "--ontologies", "CC")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("set go_cc: cached") and "nothing computed" in result.stdout

    monkeypatch.setattr(knowledge, "go_vectors", real_vectors)
    dropped = _drop_annotations(db, 5)
    report = go_embedding_set(db, "go_cc", dim=16, ontologies=["CC"], progress=False)
    after = load_embedding_set(db, "go_cc")
    assert report.computed and report.fingerprint == after.fingerprint != before.fingerprint
    assert not set(dropped) & set(after.entrez_ids.tolist()) and set(dropped) <= set(before.entrez_ids.tolist())


def test_go_set_is_written_in_one_transaction(go_db, tmp_path, monkeypatch):
    db = copy_db(go_db, tmp_path)
    before = load_embedding_set(db, _cc_set(db))
    _drop_annotations(db, 5)

    def crash(*args, **kwargs):
        raise RuntimeError("killed while finishing the set")

    monkeypatch.setattr(store, "finalise", crash)
    with pytest.raises(RuntimeError, match="killed"):
        go_embedding_set(db, "go_cc", dim=16, ontologies=["CC"], progress=False)
    after = load_embedding_set(db, "go_cc")
    assert after.fingerprint == before.fingerprint and np.array_equal(after.vectors, before.vectors)


def test_go_set_settings_and_names_are_checked(go_db, tmp_path):
    db = copy_db(go_db, tmp_path)
    with pytest.raises(InputError, match="other settings.*dim 64 -> 32"):
        go_embedding_set(db, "go", dim=32, progress=False)
    with pytest.raises(InputError, match="out of range"):
        go_embedding_set(db, "go2", dim=300, progress=False)
    with pytest.raises(InputError, match="holds text embeddings of a model"):
        go_embedding_set(db, "minilm", dim=GO_TEST_DIM, progress=False)
    result = _run("embeddings", "go", "--db", db, "--set", "go2", "--ontologies", "BP,XX")
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "subset of BP, MF, CC" in result.output


def test_go_set_works_with_other_commands(go_db, tmp_path):
    db = copy_db(go_db, tmp_path)
    result = _run("neighbors", "--db", db, "--set", "go", "RPL11", "-k", "5", "--json")
    assert result.exit_code == 0, result.output
    assert sum(r["symbol"].startswith(("RPL", "RPS")) for r in json.loads(result.stdout)) >= 3
    result = _run("neighbors", "--db", db, "--set", "go", "--text", "ribosome")
    assert result.exit_code == 1 and "holds GO-annotation vectors and has no model" in result.output
    out = export_embeddings(db, "go", tmp_path / "go.parquet", format="parquet")
    import pyarrow.parquet as pq

    meta = json.loads(pq.read_schema(out).metadata[b"scouter_local"])
    assert (
        meta["spec"]["go"]["ontologies"] == ["BP", "MF", "CC"]
        and meta["fingerprint"] == load_embedding_set(db, "go").fingerprint
    )
    listed = _run("embeddings", "list", "--db", db)
    assert "GO BP+MF+CC (TF-IDF, SVD 64)" in listed.output


def test_combined_set_has_unit_blocks_on_common_genes(go_db, tmp_path, monkeypatch):
    db = copy_db(go_db, tmp_path)
    result = _run("embeddings", "combine", "--db", db, "--sets", "minilm,go", "--set", "minilm_go", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    text, go, both = (load_embedding_set(db, n) for n in ("minilm", "go", "minilm_go"))
    common = np.intersect1d(text.entrez_ids, go.entrez_ids)
    assert both.entrez_ids.tolist() == common.tolist() and report["genes"] == len(common) < len(go.entrez_ids)
    assert report["dropped"] == {"minilm": len(text.entrez_ids) - len(common), "go": len(go.entrez_ids) - len(common)}
    assert both.dim == text.dim + go.dim == report["dim"]
    left, right = both.vectors[:, : text.dim], both.vectors[:, text.dim :]
    np.testing.assert_allclose(np.linalg.norm(left, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(right, axis=1), 1.0, atol=1e-5)
    row = int(np.flatnonzero(text.entrez_ids == common[7])[0])
    np.testing.assert_allclose(left[7], text.vectors[row] / np.linalg.norm(text.vectors[row]), atol=1e-6)
    assert [p["fingerprint"] for p in both.spec["parts"]] == [text.fingerprint, go.fingerprint]

    def must_not_run(*args, **kwargs):
        raise AssertionError("a cached combined set was recomputed")

    monkeypatch.setattr(knowledge, "vectors_table", must_not_run)
    again = _run("embeddings", "combine", "--db", db, "--sets", "minilm,go", "--set", "minilm_go")
    assert again.exit_code == 0 and again.stdout.startswith("set minilm_go: cached"), again.output
    monkeypatch.undo()

    first = combine_sets(db, ["minilm", _cc_set(db)], "minilm_cc")
    _drop_annotations(db, 5)  # a part changes: the combination follows
    _cc_set(db)
    redone = combine_sets(db, ["minilm", "go_cc"], "minilm_cc")
    assert first.computed and redone.computed and redone.fingerprint != first.fingerprint


def test_combine_refuses_bad_parts(go_db, tmp_path):
    db = copy_db(go_db, tmp_path)
    result = _run("embeddings", "combine", "--db", db, "--sets", "minilm,nope", "--set", "x")
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith("error: embedding set 'nope' is not in") and "minilm" in result.output
    with pytest.raises(InputError, match="two or more different sets"):
        combine_sets(db, ["minilm", "minilm"], "x")
    with pytest.raises(InputError, match="is one of the parts"):
        combine_sets(db, ["minilm", "go"], "go")
    combine_sets(db, ["minilm", "go"], "both")
    with pytest.raises(InputError, match="combines minilm\\+go, not go\\+minilm"):
        combine_sets(db, ["go", "minilm"], "both")
