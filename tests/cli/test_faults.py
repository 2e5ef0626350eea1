"""Kill -9 during corpus import, embedding, index build and training, then rerun: the result equals an
uninterrupted run, nothing half-written is ever visible, and a second writer gets a one-line "in use" error."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gene_corpus import Corpus
from scouter_local.cli import main
from tests._realdata import MINILM, SET
from tests.conftest import copy_db

from .conftest import NORMAN_OPTS, cli, kill_when, progress_at_least, table_snapshot

CORPUS_TABLES = (
    "meta",
    "files",
    "genes",
    "aliases",
    "texts",
    "go_terms",
    "go_parents",
    "go_annotations",
    "unresolved",
    "mygene_queries",
)
#: Genes embedded in the embedding fault test: the shortest documents, more than one write batch (256 genes).
N_EMBED = 300
WRITE_BATCH = 256


def _one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


# ------------------------------------------------------------------------------------------------ corpus import
def test_import_killed_while_writing_then_rerun_equals_uninterrupted(corpus_db, corpus_files, tmp_path):
    reference = table_snapshot(corpus_db, CORPUS_TABLES)
    db = tmp_path / "killed.duckdb"
    args = ["corpus", "import", "--db", db, *corpus_files]
    writing = lambda _err: db.is_file() and db.stat().st_size > 100_000  # noqa: E731 - table blocks being written
    killed = False
    for delay in (0.0, 0.3, 0.6):  # until one run is killed while writing
        db.unlink(missing_ok=True)
        killed, _ = kill_when(args, writing, delay=delay)
        state = table_snapshot(db, CORPUS_TABLES)
        empty = all(n == 0 for t, (n, _) in state.items() if t != "meta")
        assert empty or state == reference, f"partial import visible after SIGKILL (delay {delay}): {state}"
        if killed:
            break
    assert killed, "every import ended before it could be killed"
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert table_snapshot(db, CORPUS_TABLES) == reference


def test_second_writer_gets_one_line_in_use_error(corpus_db, corpus_files, tmp_path):
    db = copy_db(corpus_db, tmp_path)
    genes = tmp_path / "genes.txt"
    genes.write_text("KLF1\n")
    with Corpus.open(db):  # this process holds the write lock
        for args in (
            ["corpus", "import", "--db", db, corpus_files[-1]],
            ["embed", "--db", db, "--model", MINILM, "--set", "x", "--genes", genes],
        ):
            second = cli(*args)
            assert second.returncode == 1, (args, second.stderr)
            line = _one_error_line(second.stderr)
            assert "in use" in line and str(db) in line, line


# ------------------------------------------------------------------------------------------------ embedding
@pytest.fixture(scope="module")
def embed_genes(corpus_db, tmp_path_factory) -> Path:
    """Entrez ids of the :data:`N_EMBED` genes with the shortest documents (fast to embed, two write batches)."""
    with Corpus.open(corpus_db, read_only=True) as corpus:
        docs = corpus.documents()
    ids = docs.assign(n=docs["text"].str.len()).sort_values(["n", "entrez_id"])["entrez_id"][:N_EMBED]
    path = tmp_path_factory.mktemp("embed") / "genes.txt"
    path.write_text("\n".join(map(str, ids)) + "\n")
    return path


def _vectors(db: Path) -> dict[tuple[int, str], np.ndarray]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT entrez_id, text_sha256, vector FROM embedding_vectors WHERE set_name = ?", ["fault"]
        ).fetchall()
        fingerprint = con.execute("SELECT fingerprint FROM embedding_sets WHERE name = 'fault'").fetchall()
    finally:
        con.close()
    out = {(e, s): np.asarray(v, dtype=np.float32) for e, s, v in rows}
    assert len(out) == len(rows), "duplicate vector rows"
    return out | {("fingerprint", ""): np.array(fingerprint[0][0] if fingerprint else "")}


def test_embed_killed_then_rerun_gives_identical_vectors(corpus_db, embed_genes, tmp_path):
    (tmp_path / "ref").mkdir()
    ref_db = copy_db(corpus_db, tmp_path / "ref")
    # small forward passes, so the kill lands while the second (last, 44-gene) write group is still being computed
    args = ["embed", "--model", MINILM, "--set", "fault", "--genes", embed_genes, "--batch-size", "4"]
    done = cli(*args, "--db", ref_db)
    assert done.returncode == 0, done.stderr
    reference = _vectors(ref_db)
    assert len(reference) == N_EMBED + 1

    (tmp_path / "killed").mkdir()
    db = copy_db(corpus_db, tmp_path / "killed")
    killed, err = kill_when([*args, "--db", db], progress_at_least(N_EMBED, WRITE_BATCH + 4))
    assert killed, f"embed ended before it could be killed: {err[-500:]}"
    partial = _vectors(db)
    del partial[("fingerprint", "")]
    # whole write groups only: none, the first, or (killed after the last write, before exit) all of them
    assert len(partial) in (0, WRITE_BATCH, N_EMBED), f"{len(partial)} vectors: not whole write batches"
    for key, vector in partial.items():  # every stored row is complete and equal to the uninterrupted run's
        np.testing.assert_array_equal(vector, reference[key])

    rerun = cli(*args, "--db", db, "--json")
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["cached"] == len(partial) and report["computed"] == N_EMBED - len(partial)
    after = _vectors(db)
    assert after.keys() == reference.keys()
    for key in reference:
        np.testing.assert_array_equal(after[key], reference[key])


# ------------------------------------------------------------------------------------------------ index build
def test_index_build_killed_leaves_no_corrupt_index(screen_db, tmp_path):
    from scouter_local.embedding.store import load_embedding_set
    from scouter_local.index import NeighborIndex, index_dir

    (tmp_path / "ref").mkdir()
    ref_db = copy_db(screen_db, tmp_path / "ref")
    query = ["neighbors", "--set", SET, "KLF1", "-k", "5", "--json"]
    reference = CliRunner().invoke(main, [*query, "--db", str(ref_db)])
    assert reference.exit_code == 0, reference.output

    db = copy_db(screen_db, tmp_path)
    folder = index_dir(db, SET)
    emb = load_embedding_set(db, SET)
    killed = False
    for delay in (0.0, 0.05, 0.2):  # until one run is killed
        building = lambda _err: folder.parent.is_dir()  # noqa: E731 - the index folder's parent is made first
        killed, _ = kill_when([*query, "--db", db], building, delay=delay)
        if folder.exists():  # the old index, the new one, or none: never a broken one
            NeighborIndex.load(folder, emb)
        if killed:
            break
    assert killed, "every neighbors run ended before it could be killed"
    rerun = cli(*query, "--db", db)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout) == json.loads(reference.stdout)
    NeighborIndex.load(folder, emb)


# ------------------------------------------------------------------------------------------------ training
def _state(folder: Path) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in torch.load(folder / "model.pt", map_location="cpu", weights_only=True).items()}


def test_train_killed_keeps_old_model_and_rerun_is_identical(screen_db, norman_path, tmp_path):
    out = tmp_path / "model"
    args = [
        "train",
        "--data",
        norman_path,
        "--db",
        screen_db,
        "--set",
        SET,
        "--out",
        out,
        "--method",
        "scouter",
        "--seed",
        1,
        "--epochs",
        2,
        "--batch-size",
        512,
        *NORMAN_OPTS,
    ]
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    old = {f.name: f.read_bytes() for f in out.iterdir()}
    reference = _state(out)

    killed, err = kill_when([*args, "--overwrite"], lambda e: "epoch 1/2" in e)  # during the second epoch
    assert killed, f"training ended before it could be killed: {err[-500:]}"
    assert {f.name: f.read_bytes() for f in out.iterdir()} == old  # the complete old model, untouched
    rerun = cli(*args, "--overwrite")
    assert rerun.returncode == 0, rerun.stderr
    after = _state(out)
    assert after.keys() == reference.keys()
    for key in reference:  # same seed, same data: the same weights as the uninterrupted run
        np.testing.assert_array_equal(after[key], reference[key])
