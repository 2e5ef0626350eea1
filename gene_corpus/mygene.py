"""mygene.info as a source: a batching/retrying client and ``corpus pull``.

Records are turned into table rows by :mod:`gene_corpus.mygene_records`.

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

import pandas as pd
import requests
from tqdm.auto import tqdm

from gene_corpus.corpus import Corpus, ImportReport, Origin, utc_now
from gene_corpus.errors import InputError
from gene_corpus.mygene_records import FIELDS, entrez_id_of

log = logging.getLogger(__name__)
DEFAULT_URL = "https://mygene.info"
SCOPES = "symbol,alias,entrezgene,ensembl.gene,retired"
BATCH = 1000


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
            entrez = entrez_id_of(hit)
            if entrez is None:
                report.unresolved.append([query, f"hit {hit.get('_id')} has no Entrez id"])
            elif entrez not in ids_by_query[query]:
                ids_by_query[query].append(entrez)
        ids = sorted({e for found in ids_by_query.values() for e in found} - fetched)
        records = [r for i in range(0, len(ids), BATCH) for r in client.getgenes([str(e) for e in ids[i : i + BATCH]])]
        records = [r for r in records if not r.get("notfound")]
        got = {e for e in map(entrez_id_of, records) if e is not None}
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
