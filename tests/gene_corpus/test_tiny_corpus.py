"""Import and resolution on tiny files written here (``tests/_synthetic.py``'s gene table): reports, documents,
every resolution kind, idempotence, changed texts, and bad files refused with the database unchanged."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gene_corpus import Corpus, InputError
from scouter_local.cli import main
from tests._synthetic import write_corpus_files
from tests.conftest import copy_db


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """The tiny files, imported in reverse order: ``(db, files, reports)`` (read-only: copy the database)."""
    folder = tmp_path_factory.mktemp("tiny")
    files = write_corpus_files(folder / "files")
    with Corpus.open(folder / "tiny.duckdb") as corpus:
        reports = corpus.import_files(files[::-1])  # identifier tables go first whatever the order given
    return folder / "tiny.duckdb", files, reports


@pytest.fixture
def db(imported, tmp_path):
    return copy_db(imported[0], tmp_path)


def test_reports_and_stats(imported):
    db, files, reports = imported
    assert [(r.format, r.rows_read) for r in reports] == [("gene-info", 9), ("refseq-summaries", 6), ("custom-tsv", 2)]
    assert all(r.rows_added and not r.skipped and not r.unresolved for r in reports)
    with Corpus.open(db, read_only=True) as corpus:
        stats = corpus.stats()
    assert (stats["genes"], stats["documents"]) == (9, 8)
    assert {k: n for k, n in stats["texts_by_source"].items() if n} == {"ncbi_summary": 6, "custom": 2}
    assert stats["documents_by_kind"] == {"summary": 6, "custom": 2}


def test_documents(imported):
    with Corpus.open(imported[0], read_only=True) as corpus:
        docs = corpus.documents().set_index("symbol")
    assert docs.at["SYN1", "text"] == "Gene Symbol SYN1 A kinase of the synthetic stress pathway."
    assert (docs.at["SYN1", "kind"], docs.at["SYN1", "parts"]) == ("summary", "ncbi_summary")
    assert (docs.at["SYN7", "kind"], docs.at["SYN7", "text"]) == ("custom", "A chromatin remodeller.")
    assert "SYN9" not in docs.index  # no text, no document


@pytest.mark.parametrize(
    "query, entrez_id, symbol, how",
    [
        ("SYN2", 902, "SYN2", "exact"),
        ("syn2", 902, "SYN2", "exact"),
        ("OLD1", 901, "SYN1", "alias"),
        ("ENSG00000900004", 904, "SYN4", "ensembl"),
        ("ENSG00000900004.3", 904, "SYN4", "ensembl"),
        ("905", 905, "SYN5", "entrez"),
        ("NOPE", None, None, "unknown"),
    ],
)
def test_resolves(imported, query, entrez_id, symbol, how):
    with Corpus.open(imported[0], read_only=True) as corpus:
        (r,) = corpus.resolve([query])
    assert (r.entrez_id, r.symbol, r.how) == (entrez_id, symbol, how)


def test_unknown_gene_gets_suggestions(imported):
    with Corpus.open(imported[0], read_only=True) as corpus, pytest.raises(InputError, match="did you mean SYN"):
        corpus.resolve_one("SYN11")


def test_reimport_is_skipped_and_changed_text_updated(imported, db, tmp_path):
    files = imported[1]
    with Corpus.open(db) as corpus:
        assert all(r.skipped and r.rows_added == 0 for r in corpus.import_files(files))
    edited = tmp_path / "summaries_v2.tsv"
    lines = files[1].read_text().splitlines()
    edited.write_text("\n".join([lines[0], lines[1].replace("stress pathway", "heat-shock pathway")]) + "\n")
    with Corpus.open(db) as corpus:
        (report,) = corpus.import_files([edited])
        text = corpus.documents(entrez_ids=[901]).iloc[0]["text"]
    assert (report.rows_added, report.rows_updated) == (0, 1) and text.endswith("heat-shock pathway.")


def _snapshot(db):
    """What the corpus holds (the file's size is left out: DuckDB 1.x keeps the blocks of a rolled-back import)."""
    with Corpus.open(db, read_only=True) as corpus:
        return {k: v for k, v in corpus.stats().items() if k != "database_bytes"}


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "file is empty"),
        ("gene\ttext\n", "header but no rows"),
        ("gene\ttext\nSYN1\ta\nSYN1\tb\n", "line 3: duplicate row for gene=SYN1 \\(first at line 2\\)"),
        ("foo\tbar\n1\t2\n", "unknown format"),
    ],
)
def test_bad_file_is_refused_and_changes_nothing(db, tmp_path, content, message):
    bad = tmp_path / "bad.tsv"
    bad.write_text(content)
    before = _snapshot(db)
    with Corpus.open(db) as corpus, pytest.raises(InputError, match=message):
        corpus.import_files([bad])
    result = CliRunner().invoke(main, ["corpus", "import", "--db", str(db), str(bad)])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and result.output.startswith(f"error: {bad}")
    assert _snapshot(db) == before


def test_corpus_commands_on_the_tiny_corpus(imported):
    db = str(imported[0])

    def run(*args):
        result = CliRunner().invoke(main, ["corpus", *args, "--db", db])
        assert result.exit_code == 0, result.output
        return result.stdout

    resolved = json.loads(run("resolve", "OLD3", "ENSG00000900002", "--json"))
    assert [(r["symbol"], r["how"]) for r in resolved] == [("SYN3", "alias"), ("SYN2", "ensembl")]
    assert json.loads(run("stats", "--json"))["genes"] == 9
    shown = json.loads(run("show", "OLD1", "--json"))
    assert (shown["symbol"], shown["how"], shown["document"]["kind"]) == ("SYN1", "alias", "summary")
