"""UniProt sources (TSV export and .dat flat file) and custom texts, written in their real formats from real text.

There is no UniProt file in the shared data: the FUNCTION texts are the "Protein summary" parts of real GenePT
entries (which GenePT took from UniProt), written as a UniProt TSV export and a UniProtKB flat file.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from gene_corpus import Corpus, InputError


@pytest.fixture(scope="module")
def protein_summary(data_dir: Path) -> dict[str, str]:
    """``{symbol: UniProt FUNCTION text}`` from the real GenePT file."""
    genept = json.loads((data_dir / "gene_text/genept_ncbi_uniprot_perturbed_genes.json").read_text())
    return {k: v.partition("Protein summary: ")[2] for k, v in genept.items() if "Protein summary: " in v}


@pytest.fixture(scope="module")
def genept(data_dir: Path) -> dict[str, str]:
    return json.loads((data_dir / "gene_text/genept_ncbi_uniprot_perturbed_genes.json").read_text())


def _tsv(path: Path, rows: list[list[str]]) -> Path:
    header = ["Entry", "Entry Name", "Gene Names (primary)", "GeneID", "Function [CC]"]
    path.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n")
    return path


def _dat_entry(name: str, accessions: str, gene: str, gene_id: str, function: str) -> str:
    cc = textwrap.wrap(
        f"-!- FUNCTION: {function}", 75, subsequent_indent="    ", break_on_hyphens=False, break_long_words=False
    )
    return "\n".join(
        [
            f"ID   {name}_HUMAN             Reviewed;         642 AA.",
            f"AC   {accessions}",
            "DT   01-OCT-2004, integrated into UniProtKB/Swiss-Prot.",
            "DE   RecName: Full=Some protein;",
            f"GN   Name={gene} {{ECO:0000312|HGNC:HGNC:1}}; Synonyms=XYZ1;",
            "OS   Homo sapiens (Human).",
            *[f"CC   {line}" for line in cc],
            "CC   -!- SUBCELLULAR LOCATION: Cytoplasm {ECO:0000250}.",
            "CC   ---------------------------------------------------------------------------",
            "CC   Copyrighted by the UniProt Consortium, see https://www.uniprot.org/terms",
            "CC   Distributed under the Creative Commons Attribution (CC BY 4.0) License",
            "CC   ---------------------------------------------------------------------------",
            *([f"DR   GeneID; {gene_id}; -."] if gene_id else []),
            "DR   HGNC; HGNC:1; X.",
            "SQ   SEQUENCE   642 AA;  69919 MW;  B7A1C5B4B2F05E4B CRC64;",
            "     MQPRSERPAG RTQSPEHGSP GPGPEAPPPP PPQPPAPEAE RTRPRQARPA AHHHHAHHRH",
            "//",
        ]
    )


def test_uniprot_tsv(db_copy, tmp_path, protein_summary, genept):
    tsv = _tsv(
        tmp_path / "uniprot.tsv",
        [
            [
                "Q6TDP4",
                "KLHL17_HUMAN",
                "KLHL17",
                "339451;",
                f"FUNCTION: {protein_summary['KLHL17']} {{ECO:0000250|UniProtKB:Q8K430}}.",
            ],
            ["Q9BYC9", "RM20_HUMAN", "MRPL20", "", f"FUNCTION: {protein_summary['MRPL20']} (PubMed:25278503)"],
            ["Z9Z9Z9", "RPA12_HUMAN", "ZNRD1", "", f"FUNCTION: {protein_summary['ZNRD1']}"],  # by its old gene name
            ["A0A000", "NOPE_HUMAN", "NOTAGENE1", "", "FUNCTION: Does nothing at all."],
            ["P04637", "P53_HUMAN", "TP53", "7157;", ""],
        ],
    )
    with Corpus.open(db_copy) as corpus:
        (report,) = corpus.import_files([tsv])
        assert report.format == "uniprot-tsv"
        assert report.rows_added == 3 + 1  # three texts, one unresolved row recorded
        assert [key for key, _ in report.unresolved] == ["NOTAGENE1"]
        assert report.notes == ["1 entries without a FUNCTION comment"]
        texts = dict(
            corpus.con.execute("SELECT entrez_id, text FROM texts WHERE source = 'uniprot_function'").fetchall()
        )
        assert set(texts) == {339451, 55052, 30834}
        assert texts[55052] == protein_summary["MRPL20"]  # citation removed
        docs = corpus.documents(entrez_ids=[339451, 55052, 30834]).set_index("entrez_id")
    # NCBI summary + UniProt function, composed by the template, give back GenePT's own text
    assert docs.loc[339451, "text"] == " ".join(genept["KLHL17"].split())
    assert docs.loc[339451, "kind"] == "summary" and docs.loc[339451, "parts"] == "ncbi_summary+uniprot_function"


def test_uniprot_dat(db_copy, tmp_path, protein_summary, genept):
    dat = tmp_path / "uniprot_sprot_human.dat"
    dat.write_text(
        "\n".join(
            [
                _dat_entry(
                    "KLHL17",
                    "Q6TDP4; Q5SVA9;",
                    "KLHL17",
                    "339451",
                    protein_summary["KLHL17"] + " {ECO:0000250|UniProtKB:Q8K430}.",
                ),
                _dat_entry("SYAC", "P49588; Q9BRX1;", "AARS", "", protein_summary["AARS"]),
            ]
        )
        + "\n"
    )
    with Corpus.open(db_copy) as corpus:
        (report,) = corpus.import_files([dat])
        assert report.format == "uniprot-dat" and report.rows_read == 2 and report.unresolved == []
        texts = dict(
            corpus.con.execute("SELECT source_key, text FROM texts WHERE source = 'uniprot_function'").fetchall()
        )
        # KLHL17 through its GeneID line; AARS1 through its accession P49588, listed for Entrez gene 16
        assert texts == {"339451": protein_summary["KLHL17"], "16": protein_summary["AARS"]}
        doc = corpus.documents(entrez_ids=[339451]).iloc[0]
        assert corpus.resolve_one("AARS").symbol == "AARS1"
    assert doc["text"] == " ".join(genept["KLHL17"].split())


def test_truncated_dat(db_copy, tmp_path, protein_summary, snapshot):
    dat = tmp_path / "cut.dat"
    dat.write_text(_dat_entry("KLHL17", "Q6TDP4;", "KLHL17", "339451", protein_summary["KLHL17"]).rsplit("//", 1)[0])
    before = snapshot(db_copy)
    with Corpus.open(db_copy) as corpus, pytest.raises(InputError, match=r"cut\.dat line 1: entry not closed by '//'"):
        corpus.import_files([dat])
    assert snapshot(db_copy) == before


def test_custom_texts_override(db_copy, tmp_path):
    custom = tmp_path / "my_texts.tsv"
    custom.write_text("gene\ttext\nKIAA1804\tMAP3K21 is a kinase studied in our lab.\nNOTAGENE1\tnothing\n")
    with Corpus.open(db_copy) as corpus:
        (report,) = corpus.import_files([custom])
        assert report.format == "custom-tsv" and [k for k, _ in report.unresolved] == ["NOTAGENE1"]
        doc = corpus.documents(entrez_ids=[84451]).iloc[0]
        assert (doc["kind"], doc["text"]) == ("custom", "MAP3K21 is a kinase studied in our lab.")
        assert corpus.documents("ncbi", entrez_ids=[84451]).iloc[0]["kind"] == "go_fallback"
