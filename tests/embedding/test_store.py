"""Embedding sets in DuckDB: cache hit/miss/resume, shards, post-processing, export/import, safe pickle."""

from __future__ import annotations

import json
import os
import pickle
import re

import numpy as np
import pandas as pd
import pytest

from gene_corpus import Corpus
from gene_corpus.errors import InputError
from scouter_local.embedding.encoder import Encoder
from scouter_local.embedding.exchange import export_embeddings, import_embeddings, safe_load_pickle
from scouter_local.embedding.pipeline import embed_corpus
from scouter_local.embedding.store import load_embedding_set
from tests._realdata import MINILM, embed_args
from tests.conftest import SCOUTER_LOCAL, copy_db, torchrun


def test_embedded_set_loads(minilm_db, subset):
    emb = load_embedding_set(minilm_db, "minilm")
    assert emb.vectors.shape == (len(subset), 384) and emb.vectors.dtype == np.float32
    assert sorted(emb.entrez_ids.tolist()) == subset and emb.entrez_ids.tolist() == sorted(emb.entrez_ids.tolist())
    assert emb.spec["encoder"]["pooling"] == "mean" and len(emb.fingerprint) == 32
    assert "RPL11" in emb.rows()


def test_second_run_computes_nothing(minilm_db, subset, tmp_path):
    db = copy_db(minilm_db, tmp_path)
    report = embed_corpus(db, "minilm", MINILM, genes=subset, progress=False)
    assert (report.computed, report.cached, report.genes) == (0, len(subset), len(subset))
    assert report.fingerprint == load_embedding_set(minilm_db, "minilm").fingerprint


def test_changed_text_recomputes_only_that_gene(minilm_db, subset, tmp_path):
    db = copy_db(minilm_db, tmp_path)
    before = load_embedding_set(db, "minilm")
    gene = subset[3]
    with Corpus.open(db) as corpus:  # a curator edits one summary
        corpus.con.execute(
            "UPDATE texts SET text = text || ' It is also expressed in zebrafish fins.', "
            "sha256 = sha256(text || ' It is also expressed in zebrafish fins.') WHERE entrez_id = ?",
            [gene],
        ).fetchall()
    report = embed_corpus(db, "minilm", MINILM, genes=subset, progress=False)
    assert (report.computed, report.cached) == (1, len(subset) - 1)
    after = load_embedding_set(db, "minilm")
    changed = np.flatnonzero(np.abs(after.vectors - before.vectors).max(1) > 0)
    assert after.entrez_ids[changed].tolist() == [gene]
    assert after.fingerprint != before.fingerprint


def test_killed_run_keeps_only_whole_batches_and_resumes(corpus_db, subset, tmp_path, monkeypatch):
    db = copy_db(corpus_db, tmp_path)
    genes = subset[:30]
    calls = {"n": 0}
    original = Encoder.encode

    def interrupted(self, texts, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the user presses Ctrl-C during the third batch
        return original(self, texts, **kwargs)

    monkeypatch.setattr(Encoder, "encode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        embed_corpus(db, "resume", MINILM, genes=genes, write_every=10, postprocess="center", progress=False)
    monkeypatch.setattr(Encoder, "encode", original)
    with Corpus.open(db, read_only=True) as corpus:
        rows = corpus.con.execute("SELECT len(vector) FROM embedding_vectors WHERE set_name = 'resume'").fetchall()
    assert [r[0] for r in rows] == [384] * 20
    with pytest.raises(InputError, match="rerun"):
        load_embedding_set(db, "resume")  # post-processing not fitted on the partial set: refuse, don't mislead
    report = embed_corpus(db, "resume", MINILM, genes=genes, write_every=10, progress=False)
    assert (report.computed, report.cached) == (10, 20)
    emb = load_embedding_set(db, "resume")
    assert len(emb.symbols) == 30 and np.abs(emb.vectors.mean(0)).max() < 1e-5


def test_other_settings_need_another_set_name(minilm_db, subset, tmp_path):
    db = copy_db(minilm_db, tmp_path)
    with pytest.raises(InputError, match="pooling 'mean' -> 'cls'"):
        embed_corpus(db, "minilm", MINILM, pooling="cls", genes=subset[:5], progress=False)


def test_new_set_reuses_vectors_and_fits_postprocessing(minilm_db, subset, tmp_path):
    db = copy_db(minilm_db, tmp_path)
    report = embed_corpus(db, "minilm-white", MINILM, genes=subset, postprocess="whiten", progress=False)
    assert (report.computed, report.reused) == (0, len(subset))
    raw, white = load_embedding_set(db, "minilm"), load_embedding_set(db, "minilm-white")
    assert white.fingerprint != raw.fingerprint and white.spec["postprocess"] == "whiten"
    cov = np.cov(white.vectors, rowvar=False)  # whitened: unit variances (up to the eps floor), no covariance
    assert np.diag(cov).min() > 0.98 and np.abs(cov - np.diag(np.diag(cov))).max() < 1e-4
    np.testing.assert_allclose(white.postprocessor.transform(raw.vectors[:3]), white.vectors[:3], atol=1e-5)


def test_unknown_gene_is_left_out_with_close_matches(minilm_db, tmp_path):
    db = copy_db(minilm_db, tmp_path)
    with pytest.warns(UserWarning, match="1 of 2 genes left out: RPL1l \\(unknown; did you mean RPL") as record:
        report = embed_corpus(db, "minilm", MINILM, genes=["RPL11", "RPL1l"], progress=False)
    assert len(record) == 1 and "\n" not in str(record[0].message)
    assert (report.genes, report.cached, report.left_out) == (1, 1, ["RPL1l"])
    with pytest.raises(InputError, match="none of the 1 genes is usable: RPL1l \\(unknown; did you mean RPL") as info:
        embed_corpus(db, "minilm", MINILM, genes=["RPL1l"], progress=False)
    assert "\n" not in str(info.value)


def test_shards_merge_once(minilm_db, corpus_db, subset, tmp_path):
    db = copy_db(corpus_db, tmp_path)
    genes = subset[:40]
    parts = [embed_corpus(db, "sharded", MINILM, genes=genes, shard=(i, 2), progress=False) for i in range(2)]
    assert [p.computed for p in parts] == [20, 20] and all(p.shard for p in parts)
    report = embed_corpus(db, "sharded", MINILM, genes=genes, progress=False)
    assert (report.computed, report.merged) == (0, 40)
    assert not list((tmp_path / f"{db.name}.shards" / "sharded").glob("*.parquet"))
    sharded, whole = load_embedding_set(db, "sharded"), load_embedding_set(minilm_db, "minilm")
    rows = whole.rows()
    np.testing.assert_allclose(sharded.vectors, whole.vectors[[rows[s] for s in sharded.symbols]], atol=2e-5)


@pytest.mark.parametrize("fmt, name", [("scouter-csv", "out.csv.gz"), ("parquet", "out.parquet")])
def test_export_import_round_trip(minilm_db, tmp_path, fmt, name):
    db = copy_db(minilm_db, tmp_path)
    out = export_embeddings(db, "minilm", tmp_path / name, format=fmt)
    if fmt == "scouter-csv":
        frame = pd.read_csv(out, index_col=0)
        assert frame.index[0] == "ctrl" and not frame.iloc[0].any() and frame.shape[1] == 384
    report = import_embeddings(db, "copy", out)
    assert report.skipped_ctrl == (fmt == "scouter-csv") and not report.unresolved
    original, copy = load_embedding_set(db, "minilm"), load_embedding_set(db, "copy")
    assert copy.symbols == original.symbols and copy.entrez_ids.tolist() == original.entrez_ids.tolist()
    np.testing.assert_allclose(copy.vectors, original.vectors, rtol=1e-6, atol=1e-7)


def test_genept_csv_and_pickle_import(corpus_db, data_dir, tmp_path):
    db = copy_db(corpus_db, tmp_path)
    csv = data_dir / "embeddings" / "genept_ada002_adamson_genes.csv.gz"
    report = import_embeddings(db, "genept", csv)
    assert (report.genes, report.dim, report.skipped_ctrl) == (86, 1536, True)
    frame = pd.read_csv(csv, index_col=0).drop(index="ctrl")
    as_lists = tmp_path / "genept_lists.pickle"
    as_lists.write_bytes(pickle.dumps({s: [float(v) for v in row] for s, row in zip(frame.index, frame.to_numpy())}))
    as_arrays = tmp_path / "genept_arrays.pkl"
    as_arrays.write_bytes(pickle.dumps({s: row for s, row in zip(frame.index, frame.to_numpy())}))
    for path in (as_lists, as_arrays):
        import_embeddings(db, "genept-pickle", path)
        a, b = load_embedding_set(db, "genept"), load_embedding_set(db, "genept-pickle")
        assert a.symbols == b.symbols
        np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-7)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_unsafe_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"TP53": _Exploit(marker)}))
    with pytest.raises(InputError, match="not allowed"):
        safe_load_pickle(evil)
    assert not marker.exists()
    nested = tmp_path / "nested.pkl"
    nested.write_bytes(pickle.dumps({"TP53": {"a": 1.0}}))
    with pytest.raises(InputError, match="flat list"):
        safe_load_pickle(nested)
    frame = tmp_path / "frame.pkl"
    frame.write_bytes(pickle.dumps(pd.DataFrame({"a": [1.0]})))
    with pytest.raises(InputError, match="not allowed"):
        safe_load_pickle(frame)


def test_bad_csv_names_the_line(corpus_db, tmp_path):
    db = copy_db(corpus_db, tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text(",0,1\nTP53,0.1,0.2\nKRAS,0.3,oops\n")
    with pytest.raises(InputError, match="line 3 column '1'"):
        import_embeddings(db, "bad", bad)


def test_smollm2_gguf_embeds_through_the_same_command(corpus_db, subset, tmp_path):
    from tests._realdata import SMOLLM2

    db = copy_db(corpus_db, tmp_path)
    with Corpus.open(db, read_only=True) as corpus:
        docs = corpus.documents(entrez_ids=subset)
    genes = docs.assign(n=docs["text"].str.len()).nsmallest(8, "n")["entrez_id"].tolist()
    raw = embed_corpus(db, "smol", SMOLLM2, genes=genes, max_tokens=96, progress=False)
    assert (raw.computed, raw.dim) == (8, 576)
    centred = embed_corpus(db, "smol-center", SMOLLM2, genes=genes, max_tokens=96, postprocess="center", progress=False)
    assert (centred.computed, centred.reused) == (0, 8)
    emb = load_embedding_set(db, "smol")
    assert emb.spec["encoder"]["pooling"] == "last" and emb.spec["encoder"]["decoder"]

    def mean_cos(v):
        u = v / np.linalg.norm(v, axis=1, keepdims=True)
        return (u @ u.T)[np.triu_indices(len(u), 1)].mean()

    assert mean_cos(emb.vectors) > 0.5 > mean_cos(load_embedding_set(db, "smol-center").vectors)  # anisotropy removed
    four = embed_corpus(db, "smol-4bit", SMOLLM2, genes=genes[:3], max_tokens=96, quantize="4bit", progress=False)
    assert four.computed == 3 and np.isfinite(load_embedding_set(db, "smol-4bit").vectors).all()


@pytest.mark.slow
def test_two_processes_embed_shards_and_rank0_merges(corpus_db, subset, tmp_path):
    """``torchrun --nproc_per_node 2`` (what ``accelerate launch`` runs on GPUs): each rank embeds half, rank 0
    merges."""
    import subprocess

    db = copy_db(corpus_db, tmp_path)
    genes = tmp_path / "genes.txt"
    genes.write_text("\n".join(map(str, subset[:6])))
    run = subprocess.run(
        torchrun(SCOUTER_LOCAL, *embed_args(db, "ddp", genes, "--json")),
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"SCOUTER_LOCAL_THREADS": "1"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    reports = sorted(
        (json.loads(block) for block in re.findall(r"\{[^{}]*\}", run.stdout)), key=lambda r: str(r["shard"])
    )
    assert [(r["shard"], r["computed"]) for r in reports] == [("1/2", 3), (None, 3)] and reports[1]["merged"] == 6
    assert len(load_embedding_set(db, "ddp").symbols) == 6
    assert not (tmp_path / f"{db.name}.shards" / "ddp").exists()
