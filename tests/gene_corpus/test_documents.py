"""Documents: the default GenePT template, its GO fallback, other templates and the recorded parts."""

from __future__ import annotations

import hashlib
import json

import pytest

from gene_corpus import TEMPLATES, InputError


def test_default_documents(corpus):
    docs = corpus.documents()
    assert len(docs) >= 19_000
    assert list(docs.columns) == ["entrez_id", "symbol", "name", "template", "kind", "parts", "text", "text_sha256"]
    assert str(docs["entrez_id"].dtype) == "int64" and docs["entrez_id"].is_unique
    assert set(docs["kind"]) == {"summary", "genept", "go_fallback"}
    assert docs["text"].str.len().min() > 20
    row = docs.sample(1, random_state=0).iloc[0]
    assert row["text_sha256"] == hashlib.sha256(row["text"].encode()).hexdigest()


def test_summary_document_is_genept_composition(corpus, data_dir):
    doc = corpus.documents(entrez_ids=[1]).iloc[0]  # A1BG: RefSeq summary, no GenePT text
    assert (doc["kind"], doc["parts"]) == ("summary", "ncbi_summary")
    assert doc["text"].startswith("Gene Symbol A1BG The protein encoded by this gene is a plasma glycoprotein")


def test_genept_text_used_verbatim(corpus, data_dir):
    genept = json.loads((data_dir / "gene_text/genept_ncbi_uniprot_perturbed_genes.json").read_text())
    doc = corpus.documents(entrez_ids=[corpus.resolve_one("KLHL17").entrez_id]).iloc[0]
    assert (doc["kind"], doc["parts"]) == ("genept", "genept")
    assert doc["text"] == " ".join(genept["KLHL17"].split())


def test_go_fallback_for_genes_without_summary(corpus):
    docs = corpus.documents()
    fallback = docs[docs["kind"] == "go_fallback"]
    assert len(fallback) > 1000
    have_summary = set(
        corpus.con.execute("SELECT entrez_id FROM texts WHERE source IN ('ncbi_summary', 'genept')").df()["entrez_id"]
    )
    assert not have_summary & set(fallback["entrez_id"])
    assert (fallback["parts"] == "go_terms").all()
    ier5l = corpus.documents(entrez_ids=[corpus.resolve_one("IER5L").entrez_id])
    # IER5L has no GO annotation in gene2go: no GO-derived text either
    assert ier5l.empty or ier5l.iloc[0]["kind"] != "go_fallback"


def test_go_text_ranks_terms(corpus):
    text = corpus.con.execute("SELECT text FROM texts WHERE source = 'go_terms' AND entrez_id = 7157").fetchall()[0][0]
    assert text.startswith("Biological process: ")
    assert "Molecular function: " in text and "Cellular component: " in text
    for label in ("Biological process", "Molecular function", "Cellular component"):
        part = text.split(label + ": ")[1].split(".")[0]
        assert 1 <= len(part.split("; ")) <= 5


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_templates(corpus, template):
    docs = corpus.documents(template, entrez_ids=[7157, 84451, 1])
    assert (docs["template"] == template).all()
    if template == "go":
        assert set(docs["kind"]) == {"go_fallback"}
    if template == "ncbi":
        assert docs.set_index("entrez_id").loc[7157, "kind"] == "summary"


def test_documents_view_matches_default(corpus):
    view = corpus.con.execute("SELECT entrez_id, text FROM documents ORDER BY entrez_id").df()
    docs = corpus.documents()
    assert view["text"].tolist() == docs["text"].tolist()


def test_unknown_template(corpus):
    with pytest.raises(InputError, match="unknown template 'gpt'; expected one of"):
        corpus.documents("gpt")


def test_gene_info_and_go(corpus):
    info = corpus.gene_info([84451, 7157])
    assert info[["entrez_id", "symbol"]].values.tolist() == [[7157, "TP53"], [84451, "MAP3K21"]]
    assert "ENSG00000141510" in list(info.iloc[0]["ensembl_ids"])
    bp = corpus.go_annotations("BP")
    assert list(bp.columns) == ["entrez_id", "go_id"] and not bp.duplicated().any()
    assert bp["entrez_id"].nunique() > 15_000
    with pytest.raises(InputError, match="BP, MF, CC"):
        corpus.go_annotations("XX")
