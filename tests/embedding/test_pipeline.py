"""``embed`` with the encoder stand-in (``tests/_synthetic.py``) on a tiny corpus: what is computed, cached, reused,
staged in shards and merged, and that a crash leaves whole batches and the old set."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gene_corpus import Corpus
from gene_corpus.errors import InputError
from scouter_local.cli import main
from scouter_local.embedding import pipeline
from scouter_local.embedding.exchange import export_embeddings, import_embeddings
from scouter_local.embedding.spec import resolve_spec
from scouter_local.embedding.store import list_embedding_sets, load_embedding_set
from tests._synthetic import GENES, HashEncoder
from tests.conftest import copy_db

#: Genes of the tiny corpus with a document (SYN9 has no text).
WITH_TEXT = GENES["symbol"].tolist()[:8]


@pytest.fixture
def db(tiny_db, tmp_path):
    return copy_db(tiny_db, tmp_path)


def _embed(db, set_name, stand_in, **options):
    return pipeline.embed_corpus(db, set_name, stand_in.model, progress=False, **options)


def _documents(db) -> dict[str, str]:
    with Corpus.open(db, read_only=True) as corpus:
        docs = corpus.documents()
    return dict(zip(docs["symbol"], docs["text"]))


def test_vectors_are_the_encoders_of_each_document(db, stand_in):
    report = _embed(db, "hash", stand_in)
    assert (report.genes, report.computed, report.cached, report.dim) == (8, 8, 0, 16)
    emb = load_embedding_set(db, "hash")
    assert sorted(emb.symbols) == WITH_TEXT and emb.spec["encoder"]["model"] == stand_in.model
    docs = _documents(db)
    assert sorted(stand_in.encoded) == sorted(docs.values())  # each document once
    expected = HashEncoder(resolve_spec(stand_in.model)).encode([docs[s] for s in emb.symbols])
    np.testing.assert_allclose(emb.vectors, expected, atol=1e-6)


def test_second_run_computes_nothing(db, stand_in):
    first = _embed(db, "hash", stand_in)
    stand_in.encoded.clear()
    again = _embed(db, "hash", stand_in)
    assert (again.computed, again.cached) == (0, 8) and stand_in.encoded == []
    assert again.fingerprint == first.fingerprint


def test_changed_text_is_recomputed_alone(db, stand_in, tmp_path):
    before = load_embedding_set(db, _embed(db, "hash", stand_in).set_name)
    edited = tmp_path / "texts.tsv"
    edited.write_text("gene\ttext\nSYN7\tA chromatin remodeller of stem cells.\n")
    with Corpus.open(db) as corpus:
        corpus.import_files([edited])
    stand_in.encoded.clear()
    report = _embed(db, "hash", stand_in)
    assert (report.computed, report.cached) == (1, 7) and stand_in.encoded == ["A chromatin remodeller of stem cells."]
    after = load_embedding_set(db, "hash")
    changed = [s for s, a, b in zip(after.symbols, after.vectors, before.vectors) if not np.array_equal(a, b)]
    assert changed == ["SYN7"] and after.fingerprint != before.fingerprint


def test_other_set_reuses_vectors_and_fits_its_postprocessing(db, stand_in):
    raw = load_embedding_set(db, _embed(db, "hash", stand_in).set_name)
    stand_in.encoded.clear()
    report = _embed(db, "centred", stand_in, postprocess="center")
    assert (report.computed, report.reused) == (0, 8) and stand_in.encoded == []
    centred = load_embedding_set(db, "centred")
    np.testing.assert_allclose(centred.vectors, raw.vectors - raw.vectors.mean(0), atol=1e-6)
    with pytest.raises(InputError, match="pooling 'mean' -> 'cls'"):
        _embed(db, "hash", stand_in, pooling="cls")
    cls = _embed(db, "hash-cls", stand_in, pooling="cls")
    assert cls.computed == 8 and not np.allclose(load_embedding_set(db, "hash-cls").vectors, raw.vectors)


def test_long_texts_are_chunked_or_truncated(db, stand_in, tmp_path):
    long = " ".join(f"word{i}" for i in range(60))  # 60 words: three chunks of the stand-in's 24 tokens
    texts = tmp_path / "texts.tsv"
    texts.write_text(f"gene\ttext\nSYN8\t{long}\n")
    with Corpus.open(db) as corpus:
        corpus.import_files([texts])
    chunked = _embed(db, "chunk", stand_in, genes=["SYN8"])
    truncated = _embed(db, "truncate", stand_in, genes=["SYN8"], long_texts="truncate")
    assert (chunked.chunked, chunked.truncated, truncated.chunked, truncated.truncated) == (1, 0, 0, 1)
    a, b = load_embedding_set(db, "chunk").vectors[0], load_embedding_set(db, "truncate").vectors[0]
    assert 0.2 < a @ b / np.linalg.norm(a) / np.linalg.norm(b) < 0.99  # the first chunk is a part of the average


def test_shards_are_staged_then_merged_once(db, stand_in, tiny_db, tmp_path):
    parts = [_embed(db, "sharded", stand_in, shard=(i, 2)) for i in range(2)]
    assert [(p.shard, p.computed) for p in parts] == [("0/2", 4), ("1/2", 4)]
    assert "sharded" not in set(list_embedding_sets(db)["name"])  # staged beside the database, nothing stored yet
    stand_in.encoded.clear()
    merged = _embed(db, "sharded", stand_in)
    assert (merged.merged, merged.computed, merged.shard) == (8, 0, None) and stand_in.encoded == []
    assert not list((db.parent / f"{db.name}.shards" / "sharded").glob("*.parquet"))
    (tmp_path / "unsharded").mkdir()
    unsharded = copy_db(tiny_db, tmp_path / "unsharded")
    _embed(unsharded, "sharded", stand_in)
    a, b = load_embedding_set(db, "sharded"), load_embedding_set(unsharded, "sharded")
    assert (a.symbols, a.fingerprint) == (b.symbols, b.fingerprint)
    np.testing.assert_array_equal(a.vectors, b.vectors)


def test_killed_run_keeps_whole_batches_and_resumes(db, stand_in, monkeypatch):
    real = HashEncoder.encode
    calls = []

    def interrupted(self, texts, **kwargs):
        calls.append(len(texts))
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C during the second write group
        return real(self, texts, **kwargs)

    monkeypatch.setattr(HashEncoder, "encode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _embed(db, "resume", stand_in, write_every=3, postprocess="center")
    monkeypatch.setattr(HashEncoder, "encode", real)
    with Corpus.open(db, read_only=True) as corpus:
        rows = corpus.con.execute("SELECT count(*) FROM embedding_vectors WHERE set_name = 'resume'").fetchall()
    assert rows == [(3,)]
    with pytest.raises(InputError, match="rerun"):
        load_embedding_set(db, "resume")  # post-processing not fitted on the partial set
    report = _embed(db, "resume", stand_in, write_every=3)
    assert (report.computed, report.cached) == (5, 3)
    assert np.abs(load_embedding_set(db, "resume").vectors.mean(0)).max() < 1e-6


def test_crash_while_finalising_keeps_the_old_set(db, stand_in, monkeypatch, tmp_path):
    before = load_embedding_set(db, _embed(db, "hash", stand_in).set_name)
    texts = tmp_path / "texts.tsv"
    texts.write_text("gene\ttext\nSYN7\tAn edited text.\n")
    with Corpus.open(db) as corpus:
        corpus.import_files([texts])

    def crash(*args, **kwargs):
        raise RuntimeError("killed while finishing the set")

    monkeypatch.setattr(pipeline, "finalise", crash)
    with pytest.raises(RuntimeError, match="killed"):
        _embed(db, "hash", stand_in)
    with Corpus.open(db, read_only=True) as corpus:
        fingerprint = corpus.con.execute("SELECT fingerprint FROM embedding_sets WHERE name = 'hash'").fetchall()
    assert fingerprint == [(before.fingerprint,)]


def test_export_import_round_trip(db, stand_in, tmp_path):
    _embed(db, "hash", stand_in)
    for fmt, name in (("scouter-csv", "hash.csv"), ("parquet", "hash.parquet")):
        out = export_embeddings(db, "hash", tmp_path / name, format=fmt)
        report = import_embeddings(db, f"copy-{fmt}", out)
        assert report.skipped_ctrl == (fmt == "scouter-csv") and not report.unresolved and report.genes == 8
        original, copy = load_embedding_set(db, "hash"), load_embedding_set(db, f"copy-{fmt}")
        assert copy.symbols == original.symbols and copy.entrez_ids.tolist() == original.entrez_ids.tolist()
        np.testing.assert_allclose(copy.vectors, original.vectors, rtol=1e-6, atol=1e-7)


def test_embed_and_text_neighbours_through_the_command_line(db, stand_in):
    def run(*args):
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result.stdout

    report = json.loads(run("embed", "--db", db, "--model", stand_in.model, "--set", "hash", "--json"))
    assert (report["computed"], report["genes"], report["no_text"]) == (8, 8, 0)
    listed = json.loads(run("embeddings", "list", "--db", db, "--json"))
    assert [(r["name"], r["genes"], r["dim"]) for r in listed] == [("hash", 8, 16), ("synthetic", 9, 8)]
    docs = _documents(db)
    hits = json.loads(run("neighbors", "--db", db, "--set", "hash", "--text", docs["SYN4"], "-k", "2", "--json"))
    assert hits[0]["symbol"] == "SYN4" and hits[0]["cosine"] == pytest.approx(1.0, abs=1e-5)
