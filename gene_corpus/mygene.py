"""mygene.info as a source: record conversion, a batching/retrying client, and ``corpus pull``.

The client speaks mygene's v3 API: ``POST /v3/query`` (``q`` = comma-separated queries, ``scopes``,
``fields``, ``species``; batches of at most 1,000, as ``querymany``) to map queries to Entrez ids, then
``POST /v3/gene`` (``ids``, ``fields``) for the records. A hit list with ``notfound`` marks a miss; several hits
for one query are a duplicate hit: every hit gene is fetched and the query is reported with its candidates.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Iterable

import duckdb
import pandas as pd
import requests
from tqdm.auto import tqdm

from gene_corpus.corpus import Corpus, ImportReport, Origin, utc_now
from gene_corpus.errors import InputError

log = logging.getLogger(__name__)
DEFAULT_URL = "https://mygene.info"
SCOPES = "symbol,alias,entrezgene,ensembl.gene,retired"
FIELDS = "symbol,name,summary,type_of_gene,alias,ensembl.gene,uniprot,entrezgene,go,map_location,genomic_pos.chr"
BATCH = 1000
_GO_KEYS = {"BP": "BP", "MF": "MF", "CC": "CC"}


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _entrez(record: dict) -> int | None:
    for value in (record.get("entrezgene"), record.get("_id")):
        if value is not None and str(value).isdigit():
            return int(value)
    return None


def records_to_tables(records: Iterable[dict]) -> tuple[dict[str, pd.DataFrame], list[list[str]]]:
    """Turn mygene gene records into corpus table rows.

    Parameters
    ----------
    records
        ``/v3/gene`` records (fields of :data:`FIELDS`).

    Returns
    -------
    tables
        ``genes`` (entrez_id, symbol, name, gene_type, chromosome, map_location, ensembl_ids, uniprot_ids),
        ``aliases`` and ``ensembl`` (entrez_id, alias), ``summaries`` (entrez_id, text), ``go_terms``
        (go_id, term, ontology, definition), ``go_annotations`` (entrez_id, go_id, evidence, ontology).
    unresolved
        ``[_id, reason]`` for records without an Entrez id.
    """
    genes, aliases, ensembl, summaries, terms, annotations, unresolved = [], [], [], [], [], [], []
    for record in records:
        entrez = _entrez(record)
        if entrez is None:
            unresolved.append([str(record.get("_id")), "mygene record without an Entrez id"])
            continue
        ens = [
            g for e in _as_list(record.get("ensembl")) for g in _as_list(e.get("gene") if isinstance(e, dict) else e)
        ]
        uniprot = record.get("uniprot") or {}
        uniprot_ids = (
            [u for key in ("Swiss-Prot", "TrEMBL") for u in _as_list(uniprot.get(key))]
            if isinstance(uniprot, dict)
            else _as_list(uniprot)
        )
        chrom = [p.get("chr") for p in _as_list(record.get("genomic_pos")) if isinstance(p, dict) and p.get("chr")]
        genes.append(
            {
                "entrez_id": entrez,
                "symbol": record.get("symbol"),
                "name": record.get("name"),
                "gene_type": record.get("type_of_gene"),
                "chromosome": chrom[0] if chrom else None,
                "map_location": record.get("map_location"),
                "ensembl_ids": ens,
                "uniprot_ids": uniprot_ids,
            }
        )
        aliases += [
            {"entrez_id": entrez, "alias": a} for a in _as_list(record.get("alias")) if a != record.get("symbol")
        ]
        ensembl += [{"entrez_id": entrez, "alias": e} for e in ens]
        if record.get("summary"):
            summaries.append({"entrez_id": entrez, "text": record["summary"]})
        for ontology, key in _GO_KEYS.items():
            for item in _as_list((record.get("go") or {}).get(key)):
                terms.append({"go_id": item["id"], "term": item.get("term"), "ontology": ontology, "definition": None})
                annotations.append(
                    {"entrez_id": entrez, "go_id": item["id"], "evidence": item.get("evidence"), "ontology": ontology}
                )
    frames = {
        "genes": pd.DataFrame(
            genes,
            columns=[
                "entrez_id",
                "symbol",
                "name",
                "gene_type",
                "chromosome",
                "map_location",
                "ensembl_ids",
                "uniprot_ids",
            ],
        ),
        "aliases": pd.DataFrame(aliases, columns=["entrez_id", "alias"]),
        "ensembl": pd.DataFrame(ensembl, columns=["entrez_id", "alias"]),
        "summaries": pd.DataFrame(summaries, columns=["entrez_id", "text"]),
        "go_terms": pd.DataFrame(terms, columns=["go_id", "term", "ontology", "definition"]).drop_duplicates("go_id"),
        "go_annotations": pd.DataFrame(annotations, columns=["entrez_id", "go_id", "evidence", "ontology"]),
    }
    for name in ("genes", "aliases", "ensembl", "summaries", "go_annotations"):
        frames[name] = frames[name].astype({"entrez_id": "int64"})
    return frames, unresolved


def gene_records(con: duckdb.DuckDBPyConnection, entrez_ids: list[int] | None = None) -> list[dict]:
    """Rebuild mygene-shaped records (fields of :data:`FIELDS`) from a corpus database, for export.

    ``uniprot`` is written as a plain list: the corpus does not keep the Swiss-Prot/TrEMBL split.

    Parameters
    ----------
    con
        Corpus connection.
    entrez_ids
        Genes to export (``None``: every gene).
    """
    if entrez_ids is None:
        entrez_ids = [e for (e,) in con.execute("SELECT entrez_id FROM genes").fetchall()]
    con.register("_export_ids", pd.DataFrame({"entrez_id": pd.Series(list(entrez_ids), dtype="int64")}))
    try:
        genes = con.execute("SELECT * FROM genes SEMI JOIN _export_ids USING (entrez_id) ORDER BY entrez_id").df()
        aliases = con.execute(
            "SELECT entrez_id, alias FROM aliases SEMI JOIN _export_ids USING (entrez_id) "
            "WHERE kind = 'alias' ORDER BY alias"
        ).df()
        summaries = con.execute(
            "SELECT entrez_id, text FROM texts SEMI JOIN _export_ids USING (entrez_id) WHERE source = 'ncbi_summary'"
        ).df()
        go = con.execute(
            "SELECT a.entrez_id, a.go_id, t.term, a.evidence, a.ontology FROM go_annotations a "
            "SEMI JOIN _export_ids USING (entrez_id) LEFT JOIN go_terms t USING (go_id) "
            "ORDER BY a.entrez_id, a.ontology, a.go_id, a.evidence"
        ).df()
    finally:
        con.unregister("_export_ids")
    alias_by = aliases.groupby("entrez_id")["alias"].agg(list).to_dict()
    summary_by = dict(zip(summaries["entrez_id"], summaries["text"]))
    go_by: dict[int, dict[str, list[dict]]] = {}
    for entrez_id, go_id, term, evidence, ontology in go.itertuples(index=False):
        go_by.setdefault(int(entrez_id), {}).setdefault(ontology, []).append(
            {"id": go_id, "term": term, "evidence": evidence}
        )
    records = []
    for gene in genes.itertuples(index=False):
        entrez_id = int(gene.entrez_id)
        record = {
            "_id": str(entrez_id),
            "entrezgene": entrez_id,
            "symbol": gene.symbol,
            "name": gene.name,
            "type_of_gene": gene.gene_type,
            "map_location": gene.map_location,
        }
        if gene.chromosome is not None:
            record["genomic_pos"] = {"chr": gene.chromosome}
        if alias_by.get(entrez_id):
            record["alias"] = alias_by[entrez_id]
        if gene.ensembl_ids is not None and len(gene.ensembl_ids):
            record["ensembl"] = [{"gene": e} for e in gene.ensembl_ids]
        if gene.uniprot_ids is not None and len(gene.uniprot_ids):
            record["uniprot"] = list(gene.uniprot_ids)
        if entrez_id in summary_by:
            record["summary"] = summary_by[entrez_id]
        if entrez_id in go_by:
            record["go"] = go_by[entrez_id]
        records.append({k: v for k, v in record.items() if v is not None})
    return records


@dataclass
class PullReport:
    """What ``corpus pull`` did.

    Attributes
    ----------
    url
        The mygene server.
    queries
        Distinct queries asked for.
    already_pulled
        Queries answered by an earlier pull of the same server (skipped: the pull resumes).
    found
        Queries with at least one hit.
    notfound
        Queries mygene has no gene for.
    duplicates
        ``{query: [entrez_id, …]}`` for queries with several hits (every hit gene is stored).
    genes_fetched
        Distinct genes received from ``/v3/gene`` (each fetched once per pull).
    unresolved
        ``[id, reason]`` for hits or records that could not be stored (no Entrez id, no record returned).
    rows_added, rows_updated
        Table rows inserted / changed.
    """

    url: str
    queries: int = 0
    already_pulled: int = 0
    found: int = 0
    notfound: list[str] = field(default_factory=list)
    duplicates: dict[str, list[int]] = field(default_factory=dict)
    genes_fetched: int = 0
    unresolved: list[list[str]] = field(default_factory=list)
    rows_added: int = 0
    rows_updated: int = 0

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


class MyGeneClient:
    """Minimal mygene.info v3 client: batched POSTs with retries and exponential backoff.

    Parameters
    ----------
    url
        Server root (``https://mygene.info`` or an internal mirror); ``/v3/...`` is appended.
    retries
        Attempts per request on connection errors, timeouts and HTTP 429/5xx.
    backoff
        First wait in seconds; doubled after each failed attempt (capped at 30 s).
    timeout
        Seconds per request.
    """

    RETRY_STATUS = (429, 500, 502, 503, 504)

    def __init__(
        self, url: str = DEFAULT_URL, *, retries: int = 5, backoff: float = 1.0, timeout: float = 60.0
    ) -> None:
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.session = requests.Session()

    def post(self, endpoint: str, data: dict) -> list[dict]:
        """POST form data to ``/v3/<endpoint>`` and return the JSON list, retrying transient failures.

        Raises
        ------
        InputError
            A non-transient HTTP error, a non-JSON answer, or transient failures on every attempt.
        """
        url = f"{self.url}/v3/{endpoint}"
        last = ""
        for attempt in range(self.retries):
            try:
                response = self.session.post(url, data=data, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code in self.RETRY_STATUS:
                    last = f"HTTP {response.status_code}"
                elif response.status_code != 200:
                    raise InputError(
                        f"mygene {url}: HTTP {response.status_code} ({response.text[:200]!r}); check --mygene-url"
                    )
                else:
                    try:
                        result = response.json()
                    except ValueError:
                        raise InputError(
                            f"mygene {url}: answer is not JSON ({response.text[:120]!r}); check --mygene-url"
                        ) from None
                    if not isinstance(result, list):
                        raise InputError(
                            f"mygene {url}: expected a JSON list, got {type(result).__name__}; check --mygene-url"
                        )
                    return result
            if attempt + 1 < self.retries:
                wait = min(self.backoff * 2**attempt, 30.0)
                log.warning("mygene %s: %s; retrying in %.1f s (%d/%d)", url, last, wait, attempt + 1, self.retries)
                time.sleep(wait)
        raise InputError(
            f"mygene {url}: failed {self.retries} times ({last}); check --mygene-url or retry later "
            "(finished batches are kept: rerun to resume)"
        )

    def querymany(self, queries: list[str], scopes: str = SCOPES, species: str = "human") -> list[dict]:
        """Hits of one batch (≤ :data:`BATCH` queries): ``{query, _id, entrezgene, …}`` or ``{query, notfound}``."""
        if len(queries) > BATCH:
            raise ValueError(f"at most {BATCH} queries per batch, got {len(queries)}")
        return self.post(
            "query", {"q": ",".join(queries), "scopes": scopes, "fields": "entrezgene,symbol", "species": species}
        )

    def getgenes(self, ids: list[str]) -> list[dict]:
        """Records of one batch (≤ :data:`BATCH` ids) with the fields of :data:`FIELDS`."""
        if len(ids) > BATCH:
            raise ValueError(f"at most {BATCH} ids per batch, got {len(ids)}")
        return self.post("gene", {"ids": ",".join(ids), "fields": FIELDS, "species": "human"})


def pull(corpus: Corpus, queries: Iterable[str], client: MyGeneClient, *, batch_size: int = BATCH) -> PullReport:
    """Fetch genes from mygene into a corpus, one transaction per batch (an interrupted pull resumes).

    Parameters
    ----------
    corpus
        A writable :class:`~gene_corpus.corpus.Corpus`.
    queries
        Symbols, aliases, Entrez or Ensembl ids.
    client
        The mygene client (server URL, retries).
    batch_size
        Queries per ``/v3/query`` batch (≤ :data:`BATCH`).

    Returns
    -------
    :class:`PullReport`; misses and duplicate hits are listed, never dropped silently.
    """
    corpus.check_writable()
    wanted = list(dict.fromkeys(q.strip() for q in queries if q.strip()))
    if not wanted:
        raise InputError("no genes to pull; pass symbols or --genes FILE")
    report = PullReport(url=client.url, queries=len(wanted))
    done = {q for (q,) in corpus.con.execute("SELECT query FROM mygene_queries WHERE url = ?", [client.url]).fetchall()}
    todo = [q for q in wanted if q not in done]
    report.already_pulled = len(wanted) - len(todo)
    batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
    fetched: set[int] = set()  # genes already fetched by this pull (a later batch's hit may repeat one)
    for batch in tqdm(batches, desc="mygene pull", unit="batch", disable=None):
        hits = client.querymany(batch)
        ids_by_query: dict[str, list[int]] = {q: [] for q in batch}
        for hit in hits:
            query = str(hit.get("query"))
            if hit.get("notfound") or query not in ids_by_query:
                continue
            entrez = _entrez(hit)
            if entrez is None:
                report.unresolved.append([query, f"hit {hit.get('_id')} has no Entrez id"])
            elif entrez not in ids_by_query[query]:
                ids_by_query[query].append(entrez)
        ids = sorted({e for found in ids_by_query.values() for e in found} - fetched)
        records = [r for i in range(0, len(ids), BATCH) for r in client.getgenes([str(e) for e in ids[i : i + BATCH]])]
        records = [r for r in records if not r.get("notfound")]
        got = {e for e in map(_entrez, records) if e is not None}
        report.unresolved += [[str(e), "no record returned by /v3/gene"] for e in ids if e not in got]
        retrieved = utc_now()
        payload = json.dumps(records, sort_keys=True).encode()
        sha = hashlib.sha256(payload).hexdigest()
        origin = Origin(sha, f"{client.url}/v3/gene", f"mygene.info v3 at {client.url}", retrieved)
        batch_report = ImportReport(path=origin.origin, format="mygene-pull", sha256=sha, rows_read=len(records))
        with corpus.transaction():
            if (
                records
                and not corpus.con.execute("SELECT count(*) FROM files WHERE sha256 = ?", [sha]).fetchall()[0][0]
            ):
                changes = corpus.apply_mygene_records(records, origin, batch_report)
                for added, updated in changes.values():
                    batch_report.rows_added += added
                    batch_report.rows_updated += updated
                corpus.con.execute(
                    "INSERT INTO files VALUES (?, ?, 'mygene', 'mygene-pull', ?, ?, ?, ?, ?, ?, ?)",
                    [
                        sha,
                        origin.origin,
                        len(payload),
                        origin.source_version,
                        retrieved,
                        retrieved,
                        len(records),
                        batch_report.rows_added,
                        batch_report.rows_updated,
                    ],
                )
                corpus.refresh_go_texts()
            rows = pd.DataFrame(
                {
                    "query": list(ids_by_query),
                    "url": client.url,
                    "entrez_ids": list(ids_by_query.values()),
                    "status": ["found" if found else "notfound" for found in ids_by_query.values()],
                    "retrieved_at": retrieved,
                }
            )
            corpus.con.register("_queries", rows)
            corpus.con.execute(
                "INSERT INTO mygene_queries SELECT query, url, entrez_ids, status, retrieved_at FROM _queries"
            )
            corpus.con.unregister("_queries")
        report.rows_added += batch_report.rows_added
        report.rows_updated += batch_report.rows_updated
        report.unresolved += batch_report.unresolved
        fetched |= got
        report.genes_fetched = len(fetched)
        for query, found in ids_by_query.items():
            if not found:
                report.notfound.append(query)
            else:
                report.found += 1
                if len(found) > 1:
                    report.duplicates[query] = found
    return report
