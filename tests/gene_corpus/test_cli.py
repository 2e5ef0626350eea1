"""Every ``corpus`` command through the real command line (click's CliRunner) on the real files."""

from __future__ import annotations

import json

from click.testing import CliRunner

from scouter_local.cli import main


def run(*args: str):
    return CliRunner().invoke(main, ["corpus", *map(str, args)])


def test_import_text_and_json(tmp_path, data_dir):
    db = tmp_path / "cli.duckdb"
    files = [
        data_dir / "gene_text/genept_ncbi_uniprot_perturbed_genes.json",
        data_dir / "gene_ids/gene_info_human.tsv.gz",
    ]
    result = run("import", "--db", db, *files)
    assert result.exit_code == 0, result.output
    assert "gene_info_human.tsv.gz: gene-info, 77614 rows read" in result.output
    # without the HGNC table (previous symbols, HGNC aliases) six old symbols stay unresolved, each with its reason
    assert "6 not resolved to a gene: KIAA1804 (unknown: did you mean KIAA1958" in result.output
    assert "SARS (ambiguous: candidates SARS1 (6301), SARS2 (54938))" in result.output
    again = run("import", "--db", db, *files, "--json")
    assert again.exit_code == 0, again.output
    out = json.loads(again.output)
    assert [f["skipped"] for f in out["files"]] == [True, True]
    assert out["documents"] == 1915 - 6
    forced = run(
        "import",
        "--db",
        db,
        data_dir / "go/go_terms.tsv.gz",
        "--format",
        "go-terms",
        "--source-version",
        "go-basic 2022-07-01",
    )
    assert forced.exit_code == 0, forced.output
    folder = run("import", "--db", db, data_dir / "go", "--json")  # a folder: every file in it
    assert folder.exit_code == 0, folder.output
    assert sorted((f["format"], f["skipped"]) for f in json.loads(folder.output)["files"]) == [
        ("gene2go", False),
        ("go-parents", False),
        ("go-terms", True),
    ]


def test_resolve_json(full_db):
    result = run("resolve", "--db", full_db, "KIAA1804", "ENSG00000141510", "QARS", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out[0] == {"query": "KIAA1804", "entrez_id": 84451, "symbol": "MAP3K21", "how": "alias", "candidates": []}
    assert (out[1]["symbol"], out[1]["how"]) == ("TP53", "ensembl")
    assert out[2]["how"] == "ambiguous" and out[2]["candidates"] == ["EPRS1 (2058)", "QARS1 (5859)"]
    text = run("resolve", "--db", full_db, "C19orf26")
    assert text.output == "C19orf26\t255057\tCBARP\tprevious\n"


def test_show(full_db):
    result = run("show", "--db", full_db, "KIAA1804", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["symbol"], out["entrez_id"], out["how"]) == ("MAP3K21", 84451, "alias")
    assert out["document"]["kind"] == "genept"
    assert {t["source"] for t in out["texts"]} == {"genept", "go_terms"}
    assert all(t["origin"] and t["source_version"] and t["retrieved_at"] for t in out["texts"])
    text = run("show", "--db", full_db, "TP53", "--template", "go")
    assert text.exit_code == 0 and "kind go_fallback" in text.output and "text ncbi_summary: from " in text.output
    bad = run("show", "--db", full_db, "TP35")
    assert (
        bad.exit_code == 1
        and bad.output.startswith("error: gene 'TP35' is not a known symbol")
        and "did you mean" in bad.output
    )


def test_stats_json(full_db):
    result = run("stats", "--db", full_db, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert {"genes", "documents", "texts_by_source", "documents_by_kind"} <= set(out)
    assert {"ncbi_summary", "uniprot_function", "go_terms", "genept"} <= set(out["texts_by_source"])
    assert out["documents"] == sum(out["documents_by_kind"].values()) >= 19_000
    assert len(out["files"]) == 8
    assert "genes: 77614" in run("stats", "--db", full_db).output


def test_export(full_db, tmp_path):
    genes = tmp_path / "genes.txt"
    genes.write_text("TP53\nKIAA1804  # an old symbol\n")
    out = tmp_path / "sub" / "genes.jsonl"
    result = run("export", "--db", full_db, "--format", "mygene-jsonl", "--out", out, "--genes", genes)
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["symbol"] for line in out.read_text().splitlines()] == ["TP53", "MAP3K21"]
    bad = run("export", "--db", full_db, "--format", "mygene-jsonl", "--out", tmp_path / "x.jsonl", "QARS")
    assert bad.exit_code == 1 and "ambiguous" in bad.output and not (tmp_path / "x.jsonl").exists()
