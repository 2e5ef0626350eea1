"""``corpus pull`` through the official ``mygene`` client against a loopback server that answers in mygene.info's
documented shapes (``mygene_server.py``); mygene JSON-lines export and import.

The expected corpus contents below are written out by hand, not derived from the server's records.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import mygene
import pytest
from click.testing import CliRunner

from gene_corpus import Corpus, InputError
from gene_corpus.mygene import SCOPES, pull
from gene_corpus.mygene_records import FIELDS
from scouter_local.cli import main

from .mygene_server import MyGeneServer

#: Symbol, lower-case symbol, old symbol (an alias), an alias of two genes, an Entrez id, one of a gene's two
#: Ensembl ids, a symbol, an Ensembl-only gene and an unknown name.
QUERIES = ["CDK2", "tp53", "KIAA1804", "CDKN2", "1029", "ENSG00000281879", "IER5L", "ENSG00000274236", "NOTAGENE1"]

#: entrez_id → (symbol, name, type, chromosome, map_location, sorted Ensembl ids, sorted UniProt ids)
GENES = {
    28: (
        "ABO",
        "ABO, alpha 1-3-N-acetylgalactosaminyltransferase and alpha 1-3-galactosyltransferase",
        "protein-coding",
        "9",
        "9q34.2",
        ["ENSG00000175164", "ENSG00000281879"],  # ensembl: a list of objects
        ["A0A089QDC1", "P16442"],  # Swiss-Prot and TrEMBL: one string each
    ),
    1017: (
        "CDK2",
        "cyclin dependent kinase 2",
        "protein-coding",
        "12",
        "12q13",
        ["ENSG00000123374"],  # ensembl: one object (with transcripts and proteins, not kept)
        ["A0A024RB10", "A0A024RB77", "B4DDL9", "E7ESI2", "G3V317", "G3V5T9", "P24941"],  # TrEMBL: a list
    ),
    1029: (
        "CDKN2A",
        "cyclin dependent kinase inhibitor 2A",
        "protein-coding",
        "9",
        "9p21.3",
        ["ENSG00000147889"],
        ["G3XAG3", "K7PML8", "P42771", "Q8N726"],  # Swiss-Prot: a list (p16INK4a and p14ARF)
    ),
    7157: (
        "TP53",
        "tumor protein p53",
        "protein-coding",
        "17",
        "17p13.1",
        ["ENSG00000141510"],
        ["K7PPA8", "P04637", "Q53GA5"],
    ),
    84451: (
        "MAP3K21",
        "mitogen-activated protein kinase kinase kinase 21",
        "protein-coding",
        "1",
        "1q42.2",
        ["ENSG00000143674"],
        ["A0A1W2PKR9", "Q5TCX8"],
    ),
    389792: (
        "IER5L",
        "immediate early response 5 like",
        "protein-coding",
        None,
        "9q34.11",
        ["ENSG00000188483"],
        ["Q5T953"],
    ),
}
#: (entrez_id, go_id, evidence, ontology); one term with two evidence codes is two annotations.
GO = {
    (28, "GO:0006486", "IEA", "BP"),
    (1017, "GO:0000082", "TAS", "BP"),
    (1017, "GO:0000086", "NAS", "BP"),
    (1017, "GO:0000086", "TAS", "BP"),
    (1017, "GO:0004674", "TAS", "MF"),
    (1017, "GO:0004693", "IDA", "MF"),
    (1017, "GO:0000307", "IDA", "CC"),
    (1017, "GO:0000781", "IEA", "CC"),
    (1029, "GO:0000079", "IBA", "BP"),
    (1029, "GO:0007049", "IEA", "BP"),
    (1029, "GO:0004861", "IDA", "MF"),  # go.MF: one object
    (1029, "GO:0005634", "IBA", "CC"),
    (1029, "GO:0005634", "IDA", "CC"),
    (7157, "GO:0000122", "IDA", "BP"),
    (7157, "GO:0000423", "IEA", "BP"),
    (7157, "GO:0000976", "IDA", "MF"),
    (7157, "GO:0000785", "IDA", "CC"),
    (84451, "GO:0000165", "IEA", "BP"),  # go.BP: one object
    (84451, "GO:0004672", "IBA", "MF"),
    (84451, "GO:0004706", "ISS", "MF"),
    (84451, "GO:0005737", "IBA", "CC"),  # go.CC: one object
}
#: (entrez_id, alias) of kind 'alias'; IER5L's single alias comes as a string.
ALIASES = {
    (28, "A3GALNT"),
    (28, "A3GALT1"),
    (28, "GTB"),
    (28, "NAGAT"),
    (1017, "CDKN2"),
    (1017, "p33(CDK2)"),
    (1029, "ARF"),
    (1029, "CDK4I"),
    (1029, "CDKN2"),
    (1029, "INK4A"),
    (1029, "P14ARF"),
    (1029, "P16INK4A"),
    (7157, "BCC7"),
    (7157, "BMFS5"),
    (7157, "LFS1"),
    (7157, "P53"),
    (7157, "TRP53"),
    (84451, "KIAA1804"),
    (84451, "MLK4"),
    (389792, "bA247A12.2"),
}
SUMMARY_STARTS = {
    28: "This gene encodes proteins related to the first discovered blood group system, ABO.",
    1017: "This gene encodes a member of a family of serine/threonine protein kinases",
    1029: "This gene generates several transcript variants which differ in their first exons.",
    7157: "This gene encodes a tumor suppressor protein",
}


def _pull(db: Path, url: str, queries: list[str] = QUERIES, **options):
    with Corpus.open(db) as corpus:
        return pull(corpus, queries, url=url, delay=0, backoff=0.01, **options)


def _check_corpus(db: Path) -> None:
    """The corpus holds exactly the stated genes, aliases, Ensembl ids, GO annotations and texts."""
    with Corpus.open(db, read_only=True) as corpus:
        con = corpus.con
        genes = {
            e: (s, n, t, c, m, sorted(ens), sorted(uni))
            for e, s, n, t, c, m, ens, uni in con.execute(
                "SELECT entrez_id, symbol, name, gene_type, chromosome, map_location, ensembl_ids, uniprot_ids "
                "FROM genes"
            ).fetchall()
        }
        assert genes == GENES  # no rat Tp53 (species=human), no Ensembl-only gene
        assert set(con.execute("SELECT entrez_id, go_id, evidence, ontology FROM go_annotations").fetchall()) == GO
        aliases = set(con.execute("SELECT entrez_id, alias FROM aliases WHERE kind = 'alias'").fetchall())
        assert aliases == ALIASES
        ensembl = set(con.execute("SELECT entrez_id, alias FROM aliases WHERE kind = 'ensembl'").fetchall())
        assert ensembl == {(e, i) for e, gene in GENES.items() for i in gene[5]}
        assert dict(
            con.execute("SELECT go_id, term FROM go_terms WHERE go_id IN ('GO:0000165', 'GO:0004861')").fetchall()
        ) == {
            "GO:0000165": "MAPK cascade",
            "GO:0004861": "cyclin-dependent protein serine/threonine kinase inhibitor activity",
        }
        summaries = dict(con.execute("SELECT entrez_id, text FROM texts WHERE source = 'ncbi_summary'").fetchall())
        assert summaries.keys() == SUMMARY_STARTS.keys()
        assert all(summaries[e].startswith(start) for e, start in SUMMARY_STARTS.items())
        docs = corpus.documents().set_index("entrez_id")
        assert docs.loc[84451, "kind"] == "go_fallback" and "MAPK cascade" in docs.loc[84451, "text"]
        assert docs.loc[1017, "kind"] == "summary"
        resolved = {
            r.query: (r.entrez_id, r.how)
            for r in corpus.resolve(["KIAA1804", "ENSG00000281879", "bA247A12.2", "CDKN2"])
        }
        assert resolved == {
            "KIAA1804": (84451, "alias"),
            "ENSG00000281879": (28, "ensembl"),
            "bA247A12.2": (389792, "alias"),
            "CDKN2": (None, "ambiguous"),
        }


@pytest.fixture
def server():
    """A fresh loopback mygene server."""
    srv = MyGeneServer()
    yield srv
    srv.close()


def test_pull_stores_each_documented_shape(tmp_path, server):
    db = tmp_path / "pulled.duckdb"
    report = _pull(db, server.url)
    _check_corpus(db)
    assert (report.queries, report.found, report.genes_fetched, report.already_pulled) == (9, 7, 6, 0)
    assert report.notfound == ["ENSG00000274236", "NOTAGENE1"]
    assert {q: sorted(ids) for q, ids in report.duplicates.items()} == {"CDKN2": [1017, 1029]}
    assert report.unresolved == [["ENSG00000274236", "hit ENSG00000274236 has no Entrez id"]]
    with Corpus.open(db, read_only=True) as corpus:
        statuses = dict(corpus.con.execute("SELECT query, status FROM mygene_queries").fetchall())
        assert statuses == {q: "notfound" if q in report.notfound else "found" for q in QUERIES}
        assert corpus.con.execute("SELECT DISTINCT url FROM mygene_queries").fetchall() == [(server.url,)]


def test_pull_goes_through_the_mygene_client(tmp_path, server):
    """The requests carry the mygene client's User-Agent and its form: quoted terms, scopes, fields, species."""
    _pull(tmp_path / "ua.duckdb", server.url + "/v3/", batch_size=5)  # the API root is accepted too
    user_agent = f"mygene.py/{mygene.__version__}"
    assert [(r.path, r.status) for r in server.requests] == [("/v3/query/", 200), ("/v3/gene/", 200)] * 2
    assert all(user_agent in r.user_agent and r.user_agent.startswith("biothings_client.py/") for r in server.requests)
    assert all(r.content_type == "application/x-www-form-urlencoded" for r in server.requests)
    first, second = (r.form for r in server.requests if r.path == "/v3/query/")
    assert first == {
        "q": '"CDK2","tp53","KIAA1804","CDKN2","1029"',
        "scopes": SCOPES,
        "fields": "entrezgene,symbol",
        "species": "human",
    }
    assert second["q"] == '"ENSG00000281879","IER5L","ENSG00000274236","NOTAGENE1"'
    genes = [r.form for r in server.requests if r.path == "/v3/gene/"]
    assert genes[0] == {"ids": '"1017","1029","7157","84451"', "fields": FIELDS, "species": "human"}
    assert genes[1]["ids"] == '"28","389792"'  # genes of the first batch are not fetched again


def test_interrupted_pull_resumes(tmp_path, server):
    db = tmp_path / "resumed.duckdb"
    server.fail_after = 2  # the first batch (query + gene) is answered, then the server goes away
    with pytest.raises(InputError, match=r"/v3/query: failed 2 times \(HTTP 503\).*rerun to resume"):
        _pull(db, server.url, batch_size=3, retries=2)
    with Corpus.open(db, read_only=True) as corpus:
        assert sorted(q for (q,) in corpus.con.execute("SELECT query FROM mygene_queries").fetchall()) == [
            "CDK2",
            "KIAA1804",
            "tp53",
        ]
        assert sorted(e for (e,) in corpus.con.execute("SELECT entrez_id FROM genes").fetchall()) == [1017, 7157, 84451]
    server.fail_after = None
    report = _pull(db, server.url, batch_size=3)
    assert (report.already_pulled, report.found, report.notfound) == (3, 4, ["ENSG00000274236", "NOTAGENE1"])
    _check_corpus(db)
    asked = len(server.requests)
    again = _pull(db, server.url)
    assert (again.already_pulled, again.rows_added, again.rows_updated, len(server.requests)) == (9, 0, 0, asked)


def test_transient_503_is_retried(tmp_path, server):
    server.fail_next = 2
    report = _pull(tmp_path / "retry.duckdb", server.url, ["KIAA1804"], retries=3)
    assert report.found == 1 and [r.status for r in server.requests] == [503, 503, 200, 200]


def test_server_that_does_not_answer_times_out(tmp_path, server):
    server.stall = 1.0
    with pytest.raises(InputError, match=r"/v3/query: failed 1 times \(ReadTimeout: .*\); check url='http://127"):
        _pull(tmp_path / "slow.duckdb", server.url, ["TP53"], retries=1, timeout=0.2)


def test_batches_hold_at_most_1000_queries(tmp_path, server):
    queries = ["CDK2"] + [f"NOTAGENE{i}" for i in range(1000)]
    report = _pull(tmp_path / "big.duckdb", server.url, queries)
    assert (report.queries, report.found, len(report.notfound)) == (1001, 1, 1000)
    # one batch (query, then its genes) after the other; the second batch finds no gene to fetch
    assert [(r.path, len(r.form.get("q", "").split(","))) for r in server.requests] == [
        ("/v3/query/", 1000),
        ("/v3/gene/", 1),
        ("/v3/query/", 1),
    ]


def test_batch_size_is_checked(tmp_path, server):
    with pytest.raises(InputError, match="batch_size=1001: mygene.info takes 1 to 1000"):
        _pull(tmp_path / "b.duckdb", server.url, batch_size=1001)


def test_pull_cli(tmp_path, server):
    genes = tmp_path / "genes.txt"
    genes.write_text("# perturbed genes\nKIAA1804\nNOTAGENE1, CDKN2\n")
    db = tmp_path / "cli.duckdb"
    args = ["corpus", "pull", "--db", str(db), "--genes", str(genes), "--mygene-url", server.url, "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["url"], out["queries"], out["found"], out["notfound"]) == (server.url, 3, 2, ["NOTAGENE1"])
    assert {q: sorted(ids) for q, ids in out["duplicates"].items()} == {"CDKN2": [1017, 1029]}
    text = CliRunner().invoke(main, ["corpus", "pull", "--db", str(db), "KIAA1804", "--mygene-url", server.url])
    assert text.exit_code == 0, text.output
    assert text.output.startswith(f"{server.url}: 1 queries, 1 already pulled, 0 found")


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize(
    ("answer", "message", "attempts"),
    [
        (None, r"/v3/query: failed 2 times \(ConnectError: .*Connection refused\)", 0),
        ((503, "application/json", b'{"success": false}'), r"/v3/query: failed 2 times \(HTTP 503\)", 2),
        (
            (400, "application/json", b'{"success": false, "error": "Bad scopes"}'),
            r"/v3/query: HTTP 400 \('\{\"success\": false, \"error\": \"Bad scopes\"\}'\)",
            1,
        ),
        (
            (200, "text/html", b"<html>proxy login</html>"),
            r"/v3/query: the answer is not mygene.info's JSON list \(JSONDecodeError",
            1,
        ),
        (
            (200, "application/json", b'{"hits": []}'),
            r"/v3/query: the answer is not mygene.info's JSON list \(AttributeError",
            1,
        ),
        (
            (200, "application/json", b'[["CDK2"]]'),
            r"/v3/query: the answer is not mygene.info's JSON list \(AttributeError",
            1,
        ),
    ],
    ids=["unreachable", "http-503", "http-400", "html", "json-object", "list-of-lists"],
)
def test_pull_errors_are_one_line(tmp_path, server, answer, message, attempts):
    server.answer_with = answer
    url = _closed_port_url() if answer is None else server.url
    args = [
        "corpus",
        "pull",
        "--db",
        str(tmp_path / "e.duckdb"),
        "CDK2",
        "--mygene-url",
        url,
        "--retries",
        "2",
        "--backoff",
        "0",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith(f"error: mygene {url}/v3/query")
    assert re.search(message, result.output), result.output
    assert len(server.requests) == attempts
    with Corpus.open(tmp_path / "e.duckdb", read_only=True) as corpus:
        assert corpus.con.execute("SELECT count(*) FROM genes").fetchall() == [(0,)]


def test_malformed_gene_record_is_one_error(tmp_path):
    """A GO entry that is not a term object stops the batch with the gene and field named; nothing is stored."""
    bad = {"_id": "1017", "entrezgene": 1017, "taxid": 9606, "symbol": "CDK2", "go": {"BP": "GO:0000082"}}
    srv = MyGeneServer([bad])
    try:
        with pytest.raises(InputError, match=r"mygene record 1017: go.BP holds 'GO:0000082', not a term"):
            _pull(tmp_path / "bad.duckdb", srv.url, ["CDK2"])
    finally:
        srv.close()
    with Corpus.open(tmp_path / "bad.duckdb", read_only=True) as corpus:
        assert corpus.con.execute("SELECT count(*) FROM genes").fetchall() == [(0,)]


def _gene_fields(corpus: Corpus, entrez_ids: list[int]) -> dict:
    info = corpus.gene_info(entrez_ids)
    genes = {
        int(r.entrez_id): (r.symbol, r.name, r.gene_type, r.chromosome, sorted(r.ensembl_ids), sorted(r.uniprot_ids))
        for r in info.itertuples(index=False)
    }
    con = corpus.con
    con.register("_ids", info[["entrez_id"]])
    texts = {
        (int(e), s): t
        for e, s, t in con.execute(
            "SELECT entrez_id, source, text FROM texts SEMI JOIN _ids USING (entrez_id) "
            "WHERE source IN ('ncbi_summary', 'go_terms')"
        ).fetchall()
    }
    go = set(
        con.execute(
            "SELECT entrez_id, go_id, evidence, ontology FROM go_annotations SEMI JOIN _ids USING (entrez_id)"
        ).fetchall()
    )
    aliases = set(con.execute("SELECT entrez_id, alias, kind FROM aliases SEMI JOIN _ids USING (entrez_id)").fetchall())
    con.unregister("_ids")
    return {"genes": genes, "texts": texts, "go": go, "aliases": aliases}


def test_export_then_import_jsonl(full_db, corpus, tmp_path):
    out = tmp_path / "genes.jsonl"
    result = CliRunner().invoke(
        main,
        [
            "corpus",
            "export",
            "--db",
            str(full_db),
            "--format",
            "mygene-jsonl",
            "--out",
            str(out),
            "TP53",
            "KIAA1804",
            "IER5L",
            "C19orf26",
        ],
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["symbol"] for r in records] == ["TP53", "MAP3K21", "CBARP", "IER5L"]
    db = tmp_path / "airgapped.duckdb"
    with Corpus.open(db) as fresh:
        (report,) = fresh.import_files([out])
        assert report.format == "mygene-jsonl" and report.rows_read == 4
        ids = [r["entrezgene"] for r in records]
        got = _gene_fields(fresh, ids)
        assert fresh.import_files([out])[0].skipped
    want = _gene_fields(corpus, ids)
    assert got["genes"] == want["genes"] and got["texts"] == want["texts"] and got["go"] == want["go"]
    assert got["aliases"] == {a for a in want["aliases"] if a[2] in ("alias", "ensembl")}
