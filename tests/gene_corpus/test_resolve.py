"""The resolver on the real identifier tables: every match level, ambiguity and unknowns."""

from __future__ import annotations

import pytest

from gene_corpus import InputError, Resolution


@pytest.mark.parametrize(
    "query,entrez_id,symbol,how",
    [
        ("MAP3K21", 84451, "MAP3K21", "exact"),
        ("tp53", 7157, "TP53", "exact"),
        ("7157", 7157, "TP53", "entrez"),
        ("ENSG00000141510", 7157, "TP53", "ensembl"),
        ("ENSG00000141510.17", 7157, "TP53", "ensembl"),
        ("C19orf26", 255057, "CBARP", "previous"),
        ("SARS", 6301, "SARS1", "previous"),  # also an alias of SARS2: the previous symbol wins
        ("KIAA1804", 84451, "MAP3K21", "alias"),
        ("ZNRD1", 30834, "POLR1H", "previous"),
    ],
)
def test_resolves(corpus, query, entrez_id, symbol, how):
    (r,) = corpus.resolve([query])
    assert (r.entrez_id, r.symbol, r.how) == (entrez_id, symbol, how)


def test_ambiguous_lists_candidates(corpus):
    (r,) = corpus.resolve(["QARS"])
    assert r.how == "ambiguous" and r.entrez_id is None and r.symbol is None
    assert r.candidates == ["EPRS1 (2058)", "QARS1 (5859)"]
    with pytest.raises(InputError, match="ambiguous.*EPRS1.*QARS1"):
        corpus.resolve_one("QARS")


def test_shared_current_symbol_prefers_protein_coding_and_lists_others(corpus):
    (r,) = corpus.resolve(["MEMO1"])
    assert (r.entrez_id, r.how) == (51072, "exact")
    assert r.candidates == ["MEMO1 (7795)", "MEMO1 (51072)"]


def test_unknown_suggests(corpus):
    (r,) = corpus.resolve(["RHOXF2BB"])
    assert r == Resolution("RHOXF2BB", None, None, "unknown", r.candidates)
    assert "RHOXF2B" in r.candidates
    with pytest.raises(InputError, match="did you mean RHOXF2B"):
        corpus.resolve_one("RHOXF2BB")


def test_order_and_duplicates_kept(corpus):
    queries = ["KIAA1804", "nonsense-gene", "7157", "KIAA1804"]
    out = corpus.resolve(queries)
    assert [r.query for r in out] == queries
    assert [r.how for r in out] == ["alias", "unknown", "entrez", "alias"]


def test_unknown_entrez_id(corpus):
    (r,) = corpus.resolve(["999999999"])
    assert r.how == "unknown"


def test_replogle_ensembl_only_targets(corpus, data_dir):
    """The Replogle targets that carry only an Ensembl id resolve through the corpus."""
    import anndata

    obs = anndata.read_h5ad(data_dir / "perturbseq/replogle2022_k562_pseudobulk_delta.h5ad", backed="r").obs
    ids = obs["target_ensembl"].astype(str).tolist()
    out = corpus.resolve(ids)
    assert all(r.how in ("ensembl", "ambiguous", "unknown") for r in out)
    resolved = [r for r in out if r.entrez_id is not None]
    assert len(resolved) / len(out) >= 0.99
    symbols = obs["target_symbol"].astype(str).tolist()
    agree = sum(r.symbol == s for r, s in zip(out, symbols) if r.entrez_id is not None)
    assert agree / len(resolved) >= 0.9


def test_ensembl_shared_with_an_ncrna_locus_picks_the_protein_coding_gene(corpus):
    r = corpus.resolve_one("ENSG00000166848")
    assert (r.symbol, r.how) == ("TERF2IP", "ensembl")
    assert "LOC105371348 (105371348)" in r.candidates


def test_ensembl_shared_by_coding_records_prefers_the_gene_over_readthrough_and_loc(corpus):
    asb3, znf474, arl17 = corpus.resolve(["ENSG00000115239", "ENSG00000164185", "ENSG00000228696"])
    assert (asb3.symbol, asb3.how) == ("ASB3", "ensembl") and "GPR75-ASB3 (100302652)" in asb3.candidates
    assert (znf474.symbol, znf474.how) == ("ZNF474", "ensembl") and "LOC100505841 (100505841)" in znf474.candidates
    assert arl17.how == "ambiguous" and {"ARL17A (51326)", "ARL17B (100506084)"} <= set(arl17.candidates)


def test_resolve_a_gene_file_from_the_command_line(full_db, data_dir, tmp_path):
    """`corpus resolve --genes FILE` on the GenePT key list: 1,912 genes resolve, 3 are listed by --unresolved."""
    import json

    from click.testing import CliRunner

    from scouter_local.cli import main

    def run(*args):
        return CliRunner().invoke(main, ["corpus", "resolve", "--db", str(full_db), *map(str, args)])

    keys = list(json.loads((data_dir / "gene_text/genept_ncbi_uniprot_perturbed_genes.json").read_text()))
    genes = tmp_path / "genept_keys.txt"
    genes.write_text("\n".join(keys) + "\n")
    result = run("--genes", genes, "--unresolved", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [(r["query"], r["how"]) for r in out] == [
        ("AC118549.1", "unknown"),
        ("QARS", "ambiguous"),
        ("RHOXF2BB", "unknown"),
    ]
    assert out[1]["candidates"] == ["EPRS1 (2058)", "QARS1 (5859)"] and "RHOXF2B" in out[2]["candidates"]

    result = run("KIAA1804", "--genes", genes)  # arguments first, then the file
    lines = result.stdout.splitlines()
    assert len(lines) == 1916 and lines[0] == "KIAA1804\t84451\tMAP3K21\talias"
    assert sum(line.split("\t")[1] != "-" for line in lines) == 1913
    assert result.stderr.startswith(f"{genes}: 1916 genes, ") and "1 ambiguous" in result.stderr
    assert "2 unknown" in result.stderr

    result = run()
    assert (
        result.exit_code == 1 and result.output == "error: no genes to resolve; pass SYMBOL_OR_ID ... or --genes FILE\n"
    )
