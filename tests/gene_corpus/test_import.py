"""Importing every real gene_text, gene_ids and go file: counts, provenance and idempotence."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from gene_corpus import Corpus


def test_full_import_counts(corpus):
    stats = corpus.stats()
    assert stats["texts_by_source"]["ncbi_summary"] >= 15_000
    assert stats["documents"] >= 19_000
    assert stats["genes"] == 77_614
    assert set(stats["documents_by_kind"]) == {"summary", "genept", "go_fallback"}
    assert stats["aliases_by_kind"]["previous"] > 10_000
    assert stats["go_annotations"] == 348_116


def test_every_file_reported_once(full_import, real_files):
    _, reports = full_import
    assert sorted(r.path for r in reports) == sorted(map(str, real_files))
    formats = {Path(r.path).name: r.format for r in reports}
    assert formats["hgnc_genes_human.parquet"] == "hgnc"
    assert formats["genept_ncbi_uniprot_perturbed_genes.json"] == "genept-json"
    assert formats["gene2go_human.tsv.gz"] == "gene2go"
    assert not any(r.skipped for r in reports)
    # the gene_aliases table repeats gene_info's alias column: nothing new (test_gene_aliases_file_rows_all_stored)
    assert all(r.rows_added > 0 for r in reports if r.format != "gene-aliases")
    # identifier tables are imported first whatever the order given
    assert [r.format for r in reports][:3] == ["gene-info", "gene-aliases", "hgnc"]


def test_genept_genes_resolved_or_reported(full_import, corpus):
    _, reports = full_import
    report = next(r for r in reports if r.format == "genept-json")
    n_texts = corpus.con.execute("SELECT count(*) FROM texts WHERE source = 'genept'").fetchall()[0][0]
    assert report.rows_read == 1915
    assert n_texts + len(report.unresolved) == 1915, "every GenePT key is either stored or reported"
    assert n_texts / 1915 >= 0.99
    assert all(reason for _, reason in report.unresolved)
    stored = corpus.con.execute(
        "SELECT source_key, reason FROM unresolved u JOIN files f ON f.sha256 = u.file_sha256 "
        "WHERE f.format = 'genept-json' ORDER BY source_key"
    ).fetchall()
    assert sorted(map(tuple, report.unresolved)) == stored
    # old screen symbols are kept as the source key of the text
    key = corpus.con.execute("SELECT source_key FROM texts WHERE source = 'genept' AND entrez_id = 84451").fetchall()
    assert key == [("KIAA1804",)]


def test_text_provenance(corpus, data_dir):
    row = corpus.con.execute(
        "SELECT t.origin, t.source_version, t.retrieved_at, t.sha256, t.text, f.format FROM texts t "
        "JOIN files f ON f.sha256 = t.file_sha256 WHERE t.entrez_id = 7157 AND t.source = 'ncbi_summary'"
    ).fetchall()[0]
    origin, version, retrieved, sha, text, fmt = row
    assert origin == str(data_dir / "gene_text/refseq_summaries_human.tsv.gz")
    assert version.startswith("refseq_summaries_human.tsv.gz sha256:")
    assert retrieved is not None and fmt == "refseq-summaries"
    import hashlib

    assert sha == hashlib.sha256(text.encode()).hexdigest()
    assert "tumor suppressor" in text


def test_reimport_changes_nothing(db_copy, real_files, snapshot):
    before = snapshot(db_copy)
    with Corpus.open(db_copy) as corpus:
        reports = corpus.import_files(real_files)
    assert all(r.skipped and r.rows_added == 0 for r in reports)
    assert snapshot(db_copy) == before


def test_same_rows_in_another_file_change_nothing(db_copy, data_dir, tmp_path, snapshot):
    """A recompressed copy has another checksum: it is imported, but every row is already there."""
    source = data_dir / "gene_text/refseq_summaries_human.tsv.gz"
    plain = tmp_path / "refseq_copy.tsv"
    plain.write_bytes(gzip.decompress(source.read_bytes()))
    before = snapshot(db_copy)
    with Corpus.open(db_copy) as corpus:
        (report,) = corpus.import_files([plain])
    assert not report.skipped
    assert (report.rows_added, report.rows_updated) == (0, 0)
    after = snapshot(db_copy)
    assert after["counts"]["texts"] == before["counts"]["texts"]
    assert after["texts_hash"] == before["texts_hash"]
    assert len(after["files"]) == len(before["files"]) + 1


def test_changed_text_is_updated(db_copy, data_dir, tmp_path):
    lines = gzip.decompress((data_dir / "gene_text/refseq_summaries_human.tsv.gz").read_bytes()).decode().splitlines()
    header, tp53 = lines[0], next(line for line in lines if line.startswith("7157\t"))
    fields = tp53.split("\t")
    fields[5] = "A revised summary of TP53."
    edited = tmp_path / "refseq_tp53.tsv"
    edited.write_text(header + "\n" + "\t".join(fields) + "\n")
    with Corpus.open(db_copy) as corpus:
        (report,) = corpus.import_files([edited])
        assert (report.rows_added, report.rows_updated) == (0, 1)
        doc = corpus.documents(entrez_ids=[7157]).iloc[0]
    assert doc["text"] == "Gene Symbol TP53 A revised summary of TP53."


def test_read_only_opens_together(full_db):
    with Corpus.open(full_db, read_only=True) as a, Corpus.open(full_db, read_only=True) as b:
        assert a.stats()["genes"] == b.stats()["genes"]


def test_database_copy_keeps_everything(full_db, tmp_path):
    copy = tmp_path / "moved.duckdb"
    shutil.copy(full_db, copy)
    with Corpus.open(copy, read_only=True) as corpus:
        assert corpus.resolve_one("KIAA1804").symbol == "MAP3K21"


def test_no_row_without_gene(corpus):
    """Every alias, text and GO annotation names an Entrez id, and every alias of the gene_aliases file is kept."""
    for table in ("aliases", "texts", "go_annotations", "genes"):
        assert corpus.con.execute(f"SELECT count(*) FROM {table} WHERE entrez_id IS NULL").fetchall()[0][0] == 0, table
    kept = corpus.con.execute(
        "SELECT count(*) FROM aliases WHERE kind = 'alias' AND alias = 'KIAA1804' AND entrez_id = 84451"
    ).fetchall()
    assert kept == [(1,)]
    n_alias_genes = corpus.con.execute("SELECT count(DISTINCT entrez_id) FROM aliases WHERE kind = 'alias'").fetchall()[
        0
    ][0]
    assert n_alias_genes > 25_000


def test_gene_aliases_file_rows_all_stored(corpus, data_dir):
    import pandas as pd

    table = pd.read_csv(data_dir / "gene_ids/gene_aliases_human.tsv.gz", sep="\t", dtype=str, keep_default_na=False)
    table = table[table["alias_symbol"] != table["symbol"]]
    stored = corpus.con.execute("SELECT entrez_id, alias FROM aliases WHERE kind = 'alias'").df()
    stored_pairs = set(zip(stored["entrez_id"].astype(str), stored["alias"]))
    missing = [p for p in zip(table["entrez_id"], table["alias_symbol"]) if p not in stored_pairs]
    assert missing == []
