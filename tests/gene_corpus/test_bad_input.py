"""Bad input on the real files: one ``error: …`` line naming file/line/field, exit 1, database unchanged."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gene_corpus import Corpus, InputError
from scouter_local.cli import main


@pytest.fixture(scope="module")
def refseq_lines(data_dir: Path) -> list[str]:
    """Lines of the real RefSeq summaries file."""
    return gzip.decompress((data_dir / "gene_text/refseq_summaries_human.tsv.gz").read_bytes()).decode().splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _fails_cleanly(db: Path, files: list[Path], match: str, snapshot, extra: tuple[str, ...] = ()) -> None:
    """The import fails with ``match`` in the API and in the CLI, and leaves ``db`` as it was."""
    before = snapshot(db)
    with Corpus.open(db) as corpus, pytest.raises(InputError, match=match):
        corpus.import_files(files, *extra)
    args = ["corpus", "import", "--db", str(db), *map(str, files)] + (["--format", extra[0]] if extra else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert snapshot(db) == before


def test_truncated_gzip(db_copy, data_dir, tmp_path, snapshot):
    data = (data_dir / "gene_text/refseq_summaries_human.tsv.gz").read_bytes()
    bad = tmp_path / "refseq_truncated.tsv.gz"
    bad.write_bytes(data[: len(data) // 2])
    _fails_cleanly(db_copy, [bad], r"refseq_truncated\.tsv\.gz: truncated or corrupt gzip", snapshot)


def test_wrong_columns(db_copy, refseq_lines, tmp_path, snapshot):
    header = refseq_lines[0].replace("refseq_summary", "summary")
    bad = _write(tmp_path / "refseq_renamed.tsv", [header, *refseq_lines[1:50]])
    _fails_cleanly(db_copy, [bad], r"refseq_renamed\.tsv: unknown format \(columns: .*\); expected one of", snapshot)
    _fails_cleanly(
        db_copy,
        [bad],
        r"missing column\(s\) refseq_summary for format refseq-summaries",
        snapshot,
        ("refseq-summaries",),
    )


def test_empty_file(db_copy, refseq_lines, tmp_path, snapshot):
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"")
    _fails_cleanly(db_copy, [empty], r"empty\.tsv: file is empty", snapshot)
    header_only = _write(tmp_path / "header_only.tsv", refseq_lines[:1])
    _fails_cleanly(db_copy, [header_only], r"header_only\.tsv: header but no rows", snapshot)


def test_unknown_format(db_copy, data_dir, snapshot):
    embeddings = data_dir / "embeddings/genept_ada002_adamson_genes.csv.gz"
    _fails_cleanly(db_copy, [embeddings], r"genept_ada002_adamson_genes\.csv\.gz: unknown format", snapshot)
    with Corpus.open(db_copy) as corpus, pytest.raises(InputError, match="unknown format 'fasta'"):
        corpus.import_files([embeddings], "fasta")


def test_duplicate_rows(db_copy, refseq_lines, tmp_path, snapshot):
    bad = _write(tmp_path / "refseq_dup.tsv", [*refseq_lines[:11], refseq_lines[3]])
    entrez = refseq_lines[3].split("\t")[0]
    _fails_cleanly(
        db_copy, [bad], rf"refseq_dup\.tsv line 12: duplicate row for entrez_id={entrez} \(first at line 4\)", snapshot
    )


def test_duplicate_json_key(db_copy, data_dir, tmp_path, snapshot):
    text = (data_dir / "gene_text/genept_ncbi_uniprot_perturbed_genes.json").read_text()
    bad = tmp_path / "genept_dup.json"
    bad.write_text(text[:-1] + ', "KLHL17": "Gene Symbol KLHL17 again"}')
    _fails_cleanly(db_copy, [bad], r"genept_dup\.json: duplicate key 'KLHL17'", snapshot)


def test_bad_field_and_short_line(db_copy, refseq_lines, tmp_path, snapshot):
    fields = refseq_lines[5].split("\t")
    bad_id = _write(tmp_path / "refseq_badid.tsv", [*refseq_lines[:5], "\t".join(["7x57", *fields[1:]])])
    _fails_cleanly(db_copy, [bad_id], r"refseq_badid\.tsv line 6 field entrez_id: '7x57' is not an integer", snapshot)
    short = _write(tmp_path / "refseq_short.tsv", [*refseq_lines[:5], "\t".join(fields[:3])])
    _fails_cleanly(db_copy, [short], r"refseq_short\.tsv line 6: 3 fields, the header has 7", snapshot)
    long = _write(tmp_path / "refseq_long.tsv", [*refseq_lines[:5], "\t".join(fields + ["extra"])])
    _fails_cleanly(db_copy, [long], r"refseq_long\.tsv line 6: 8 fields, the header has 7", snapshot)


def test_failure_in_second_file_rolls_back_first(db_copy, data_dir, tmp_path, refseq_lines, snapshot):
    """One transaction per import: a bad row found while loading undoes the files loaded before it."""
    lines = gzip.decompress((data_dir / "go/gene2go_human.tsv.gz").read_bytes()).decode().splitlines()
    bad_row = lines[20].split("\t")
    bad_row[4] = "XX"
    gene2go = _write(tmp_path / "gene2go_bad.tsv", [*lines[:20], "\t".join(bad_row)])
    edited = refseq_lines[1].split("\t")
    edited[5] = "A changed summary that must not survive the failed import."
    refseq = _write(tmp_path / "refseq_new.tsv", [refseq_lines[0], "\t".join(edited)])
    _fails_cleanly(
        db_copy, [refseq, gene2go], r"gene2go_bad\.tsv line 21 field ontology: 'XX' is not one of BP, MF, CC", snapshot
    )


def test_text_source_needs_gene_ids(tmp_path, data_dir):
    with Corpus.open(tmp_path / "fresh.duckdb") as corpus, pytest.raises(InputError, match="import the gene_ids files"):
        corpus.import_files([data_dir / "gene_text/genept_ncbi_uniprot_perturbed_genes.json"])
    with Corpus.open(tmp_path / "fresh.duckdb", read_only=True) as corpus:
        assert corpus.stats()["genes"] == 0


def test_missing_file_and_read_only(db_copy, tmp_path):
    with Corpus.open(db_copy) as corpus, pytest.raises(InputError, match="nope.tsv: no such file"):
        corpus.import_files([tmp_path / "nope.tsv"])
    with Corpus.open(db_copy, read_only=True) as corpus, pytest.raises(InputError, match="open read-only"):
        corpus.import_files([tmp_path / "nope.tsv"])
    with pytest.raises(InputError, match="does not exist; create it with"):
        Corpus.open(tmp_path / "absent.duckdb", read_only=True)
    not_db = tmp_path / "not_a_db.duckdb"
    not_db.write_text("hello")
    with pytest.raises(InputError, match="cannot be opened"):
        Corpus.open(not_db)


def test_database_locked_by_another_process(db_copy, data_dir, snapshot):
    before = snapshot(db_copy)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(120)",
            str(db_copy),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(InputError, match=r"database .*copy\.duckdb is in use by another process"):
            Corpus.open(db_copy)
        result = CliRunner().invoke(
            main, ["corpus", "import", "--db", str(db_copy), str(data_dir / "go/go_terms.tsv.gz")]
        )
        assert result.exit_code == 1
        assert result.output.startswith("error: database ") and "in use by another process" in result.output
        assert len(result.output.strip().splitlines()) == 1
    finally:
        holder.kill()
        holder.wait()
    assert snapshot(db_copy) == before
