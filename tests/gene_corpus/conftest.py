"""Fixtures of the corpus tests: the real shared files and one database built from all of them per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gene_corpus import Corpus

#: Folders of ../shared/data whose every file is imported.
REAL_FOLDERS = ("gene_text", "gene_ids", "go")


@pytest.fixture(scope="session")
def real_files(data_dir: Path) -> list[Path]:
    """Paths of every file under gene_text, gene_ids and go."""
    return sorted(f for folder in REAL_FOLDERS for f in (data_dir / folder).iterdir() if f.is_file())


@pytest.fixture(scope="session")
def full_import(tmp_path_factory: pytest.TempPathFactory, real_files: list[Path]) -> tuple[Path, list]:
    """A database holding every real file, and the import reports (built once per session; treat as read-only)."""
    db = tmp_path_factory.mktemp("corpus") / "full.duckdb"
    with Corpus.open(db) as corpus:
        reports = corpus.import_files(real_files)
    return db, reports


@pytest.fixture(scope="session")
def full_db(full_import: tuple[Path, list]) -> Path:
    """Path of the full database (read-only use)."""
    return full_import[0]


@pytest.fixture(scope="session")
def corpus(full_db: Path):
    """The full database opened read-only for the whole session."""
    with Corpus.open(full_db, read_only=True) as opened:
        yield opened


@pytest.fixture
def db_copy(full_db: Path, tmp_path: Path) -> Path:
    """A private writable copy of the full database."""
    target = tmp_path / "copy.duckdb"
    shutil.copy(full_db, target)
    return target


def _snapshot(db: Path) -> dict:
    with Corpus.open(db, read_only=True) as corpus:
        tables = [
            r[0]
            for r in corpus.con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
            ).fetchall()
        ]
        counts = {t: corpus.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in tables}
        files = corpus.con.execute("SELECT * FROM files ORDER BY sha256").fetchall()
        texts = corpus.con.execute("SELECT sum(hash(entrez_id, source, sha256)) FROM texts").fetchall()[0][0]
    return {"counts": counts, "files": files, "texts_hash": texts}


@pytest.fixture(scope="session")
def snapshot():
    """``snapshot(db)``: row counts of every table, the ``files`` rows and a hash of all texts (what an import may
    change)."""
    return _snapshot
