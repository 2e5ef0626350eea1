"""``corpus pull`` against a real loopback mygene server built from the real tables; mygene JSON-lines export/import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gene_corpus import Corpus, InputError
from gene_corpus.mygene import BATCH, MyGeneClient, pull
from scouter_local.cli import main

from .mygene_server import MyGeneServer, build_records


@pytest.fixture(scope="session")
def genept_keys(data_dir: Path) -> list[str]:
    """The 1,915 (old) symbols of the GenePT file, in file order."""
    return list(json.loads((data_dir / "gene_text/genept_ncbi_uniprot_perturbed_genes.json").read_text()))


@pytest.fixture(scope="session")
def served_records(data_dir: Path, genept_keys: list[str]) -> dict[int, dict]:
    """Records of every gene whose symbol or alias is a GenePT key."""
    return build_records(data_dir, set(genept_keys))


@pytest.fixture
def server(served_records):
    """A fresh loopback mygene server."""
    srv = MyGeneServer(served_records)
    yield srv
    srv.close()


@pytest.fixture(scope="session")
def pulled_db(tmp_path_factory, served_records, genept_keys) -> tuple[Path, object, list]:
    """A database filled only by pulling all GenePT keys (batches of 1,000), with the report and server log."""
    srv = MyGeneServer(served_records)
    db = tmp_path_factory.mktemp("pull") / "pulled.duckdb"
    try:
        with Corpus.open(db) as corpus:
            report = pull(corpus, genept_keys, MyGeneClient(srv.url, backoff=0.01))
    finally:
        srv.close()
    return db, report, srv.requests


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
            "SELECT entrez_id, source, text FROM texts SEMI JOIN _ids USING (entrez_id) WHERE source IN ('ncbi_summary', 'go_terms')"
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


def test_pull_fills_same_fields_as_file_import(pulled_db, corpus, served_records):
    db, report, requests = pulled_db
    ids = sorted(served_records)
    with Corpus.open(db, read_only=True) as pulled:
        got = _gene_fields(pulled, ids)
        docs = pulled.documents()
    want = _gene_fields(corpus, ids)
    assert len(got["genes"]) == len(served_records) > 1900
    assert got["genes"] == want["genes"]
    assert got["texts"] == want["texts"]
    assert got["go"] == want["go"]
    assert got["aliases"] <= want["aliases"]
    assert {k for *_, k in got["aliases"]} == {"alias", "ensembl"}
    assert len(docs) >= 1900 and set(docs["kind"]) <= {"summary", "go_fallback"}
    # batches of at most 1,000 queries: 1,915 queries → 2 query batches, each followed by its /v3/gene batch(es)
    paths = [p for p, _ in requests]
    assert paths.count("/v3/query") == 2 and paths[0] == "/v3/query" and paths[-1] == "/v3/gene"
    assert report.queries == 1915 and report.genes_fetched == len(served_records)


def test_pull_reports_misses_and_duplicates(pulled_db):
    _, report, _ = pulled_db
    # KIAA1804 is an HGNC alias only: the server's records (NCBI aliases) do not know it
    assert {"AC118549.1", "RHOXF2BB", "KIAA1804"} <= set(report.notfound)
    assert report.found + len(report.notfound) == report.queries
    assert sorted(report.duplicates["SARS"]) == [6301, 54938]  # alias of SARS1 and SARS2: both stored, reported
    assert report.unresolved == []


def test_pull_is_resumable(tmp_path, server, served_records, genept_keys, pulled_db):
    server.fail_after = 2  # the first batch (query + gene) succeeds, then the server goes away
    db = tmp_path / "resumed.duckdb"
    with Corpus.open(db) as corpus, pytest.raises(InputError, match=r"failed 2 times \(HTTP 503\).*rerun to resume"):
        pull(corpus, genept_keys, MyGeneClient(server.url, retries=2, backoff=0.01), batch_size=600)
    with Corpus.open(db, read_only=True) as corpus:
        assert corpus.con.execute("SELECT count(*) FROM mygene_queries").fetchall()[0][0] == 600
    server.fail_after = None
    with Corpus.open(db) as corpus:
        report = pull(corpus, genept_keys, MyGeneClient(server.url, backoff=0.01), batch_size=600)
        assert report.already_pulled == 600 and report.queries == 1915
        resumed = _gene_fields(corpus, sorted(served_records))
        again = pull(corpus, genept_keys, MyGeneClient(server.url, backoff=0.01))
        assert again.already_pulled == 1915 and again.rows_added == 0
    with Corpus.open(pulled_db[0], read_only=True) as corpus:
        assert resumed == _gene_fields(corpus, sorted(served_records))


def test_transient_503_is_retried(tmp_path, server):
    server.fail_next = 2
    with Corpus.open(tmp_path / "retry.duckdb") as corpus:
        report = pull(corpus, ["ZNRD1", "C19orf26"], MyGeneClient(server.url, retries=3, backoff=0.01))
        assert [r.symbol for r in corpus.resolve(["ZNRD1", "C19orf26"])] == ["POLR1H", "CBARP"]
    assert report.found == 2
    assert [s for _, s in server.requests] == [503, 503, 200, 200]


def test_client_batch_limit(server):
    client = MyGeneClient(server.url)
    with pytest.raises(ValueError, match="at most 1000"):
        client.querymany([str(i) for i in range(BATCH + 1)])


def test_pull_cli(tmp_path, server):
    genes = tmp_path / "genes.txt"
    genes.write_text("# perturbed genes\nC19orf26\nAC118549.1, SARS\n")
    db = tmp_path / "cli.duckdb"
    args = ["corpus", "pull", "--db", str(db), "--genes", str(genes), "--mygene-url", server.url, "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["queries"], out["found"], out["notfound"]) == (3, 2, ["AC118549.1"])
    assert out["duplicates"] == {"SARS": [6301, 54938]}
    text = CliRunner().invoke(main, ["corpus", "pull", "--db", str(db), "TP53", "--mygene-url", server.url])
    assert text.exit_code == 0 and "not found (1): TP53" in text.output
    server.fail_after = 0
    failed = CliRunner().invoke(
        main,
        ["corpus", "pull", "--db", str(db), "CBARP", "--mygene-url", server.url, "--retries", "2", "--backoff", "0"],
    )
    assert failed.exit_code == 1 and failed.output.startswith("error: mygene ")
    assert len(failed.output.strip().splitlines()) == 1


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


def test_official_mygene_client_agrees(server, genept_keys, pulled_db):
    """The ``mygene`` PyPI client's querymany on the same server finds the same misses and duplicate hits."""
    import mygene

    from gene_corpus.mygene import SCOPES

    client = mygene.MyGeneInfo()
    client.url = server.url + "/v3"
    out = client.querymany(
        genept_keys, scopes=SCOPES, fields="entrezgene", species="human", returnall=True, verbose=False
    )
    _, report, _ = pulled_db
    assert set(out["missing"]) == set(report.notfound)
    assert {q for q, _ in out["dup"]} == set(report.duplicates)
