"""A real HTTP server on loopback speaking mygene.info's v3 API, with records built from the real shared tables.

Implements ``POST /v3/query`` (form fields ``q`` comma-separated, ``scopes``, ``fields``; one hit per matching
gene, ``{"query": q, "notfound": true}`` for misses) and ``POST /v3/gene`` (``ids``, ``fields``), as
mygene.info does. ``fail_next`` answers that many requests with HTTP 503 first; ``fail_after`` answers 503 to
every request after that many successful ones (a server going away mid-pull).
"""

from __future__ import annotations

import csv
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pandas as pd


def build_records(data_dir: Path, symbols: set[str]) -> dict[int, dict]:
    """mygene records of the gene_info genes whose symbol or any alias is in ``symbols``, from the real tables."""
    info = pd.read_csv(data_dir / "gene_ids/gene_info_human.tsv.gz", sep="\t", dtype=str, keep_default_na=False)
    names = info["aliases"].str.split("|").map(set)
    info = info[[bool(({s} | n) & symbols) for s, n in zip(info["symbol"], names)]]
    summaries = pd.read_csv(
        data_dir / "gene_text/refseq_summaries_human.tsv.gz", sep="\t", dtype=str, keep_default_na=False
    )
    summary = dict(zip(summaries["entrez_id"], summaries["refseq_summary"]))
    go = pd.read_csv(data_dir / "go/gene2go_human.tsv.gz", sep="\t", dtype=str, keep_default_na=False)
    terms = pd.read_csv(data_dir / "go/go_terms.tsv.gz", sep="\t", dtype=str, keep_default_na=False)
    go = go[go["entrez_id"].isin(set(info["entrez_id"]))].merge(terms[["go_id", "term"]], on="go_id", how="left")
    records = {}
    for row in info.itertuples(index=False):
        record = {
            "_id": row.entrez_id,
            "entrezgene": int(row.entrez_id),
            "symbol": row.symbol,
            "name": row.gene_name,
            "type_of_gene": row.gene_type,
            "map_location": row.map_location or None,
        }
        if row.chromosome:
            record["genomic_pos"] = {"chr": row.chromosome, "start": 1, "end": 2, "strand": 1}
        alias = [a for a in row.aliases.split("|") if a and a != row.symbol]
        if alias:
            record["alias"] = alias[0] if len(alias) == 1 else alias
        ensembl = [e for e in row.ensembl_ids.split("|") if e]
        if ensembl:
            record["ensembl"] = {"gene": ensembl[0]} if len(ensembl) == 1 else [{"gene": e} for e in ensembl]
        uniprot = [u for u in row.uniprot_ids.split("|") if u]
        if uniprot:
            record["uniprot"] = {"Swiss-Prot": uniprot[0]} | (
                {"TrEMBL": uniprot[1:] if len(uniprot) > 2 else uniprot[1]} if len(uniprot) > 1 else {}
            )
        if row.entrez_id in summary:
            record["summary"] = summary[row.entrez_id]
        records[int(row.entrez_id)] = {k: v for k, v in record.items() if v is not None}
    for (entrez_id, ontology), rows in go.groupby(["entrez_id", "ontology"]):
        items = [
            {"id": g, "term": t, "evidence": e, "qualifier": "involved_in", "pubmed": [1]}
            for g, t, e in zip(rows["go_id"], rows["term"], rows["evidence"])
        ]
        records[int(entrez_id)].setdefault("go", {})[ontology] = items[0] if len(items) == 1 else items
    return records


def _terms(value: str) -> list[str]:
    """Comma-separated terms, each optionally double-quoted (the ``mygene`` client quotes them)."""
    return [t.strip() for t in next(csv.reader([value], skipinitialspace=True), []) if t.strip()]


class MyGeneServer:
    """The server, started on 127.0.0.1 on a free port.

    Parameters
    ----------
    records
        ``{entrez_id: record}`` it serves.
    """

    SCOPE_FIELDS = {"symbol", "alias", "entrezgene", "ensembl.gene", "retired"}

    def __init__(self, records: dict[int, dict]) -> None:
        self.records = records
        self.fail_next = 0
        self.fail_after: int | None = None
        self.requests: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self.index: dict[str, dict[str, set[int]]] = {s: {} for s in self.SCOPE_FIELDS}
        for entrez_id, r in records.items():
            self._add("symbol", r["symbol"], entrez_id)
            self._add("entrezgene", str(entrez_id), entrez_id)
            for a in (
                r.get("alias", []) if isinstance(r.get("alias"), list) else [r.get("alias")] if r.get("alias") else []
            ):
                self._add("alias", a, entrez_id)
            ens = r.get("ensembl", [])
            for e in ens if isinstance(ens, list) else [ens]:
                self._add("ensembl.gene", e["gene"], entrez_id)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                status, payload = server.answer(self.path.split("?")[0].rstrip("/"), form)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def _add(self, scope: str, key: str, entrez_id: int) -> None:
        self.index[scope].setdefault(key.upper(), set()).add(entrez_id)

    def _fields(self, record: dict, fields: str) -> dict:
        wanted = {f.split(".")[0] for f in fields.split(",")}
        return {k: v for k, v in record.items() if k in wanted or k == "_id"}

    def answer(self, path: str, form: dict) -> tuple[int, object]:
        """(HTTP status, JSON payload) for one request."""
        with self._lock:
            ok = sum(1 for _, s in self.requests if s == 200)
            if self.fail_next > 0 or (self.fail_after is not None and ok >= self.fail_after):
                self.fail_next = max(0, self.fail_next - 1)
                self.requests.append((path, 503))
                return 503, {"error": "service unavailable"}
        if path == "/v3/query":
            terms = _terms(form.get("q", ""))
            if len(terms) > 1000:
                status, payload = 400, {"error": "at most 1000 terms per request"}
            else:
                scopes = form.get("scopes", "symbol").split(",")
                payload = []
                for term in terms:
                    hits = sorted(
                        {e for s in scopes if s in self.index for e in self.index[s].get(term.upper(), set())}
                    )
                    payload += [
                        {
                            "query": term,
                            "_id": str(e),
                            "_score": 10.0,
                            **self._fields(self.records[e], form.get("fields", "symbol")),
                        }
                        for e in hits
                    ] or [{"query": term, "notfound": True}]
                status = 200
        elif path == "/v3/gene":
            ids = _terms(form.get("ids", ""))
            payload = [
                {"query": i, **self._fields(self.records[int(i)], form.get("fields", "all"))}
                if i.isdigit() and int(i) in self.records
                else {"query": i, "notfound": True}
                for i in ids
            ]
            status = 200
        else:
            status, payload = 404, {"error": f"no route {path}"}
        with self._lock:
            self.requests.append((path, status))
        return status, payload

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()
