"""``corpus pull``: genes from mygene.info (or an internal mirror) into a corpus, through the official client.

Each batch of at most :data:`BATCH` queries goes through ``mygene.MyGeneInfo``: ``querymany`` (``POST /v3/query``)
maps symbols, aliases, Entrez or Ensembl ids to Entrez ids, ``getgenes`` (``POST /v3/gene``) fetches the records,
and the batch is written in one transaction together with the queries it answered, so a pull stopped anywhere
resumes where it stopped. A query without hit is reported as not found; several hits for one query are a
duplicate hit: every hit gene is stored and the query is reported with its candidates.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Callable, Iterable

import httpx
import mygene
import pandas as pd
from tqdm.auto import tqdm

from gene_corpus.corpus import Corpus, ImportReport, Origin, utc_now
from gene_corpus.errors import InputError
from gene_corpus.mygene_records import FIELDS, entrez_id_of

log = logging.getLogger(__name__)
DEFAULT_URL = "https://mygene.info"
SCOPES = "symbol,alias,entrezgene,ensembl.gene,retired"
#: Queries per batch: mygene.info answers at most 1,000 terms per POST.
BATCH = 1000
#: HTTP statuses worth another attempt (the others are the request's fault).
TRANSIENT = (429, 500, 502, 503, 504)


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


def _one_line(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[:limit]


def _ask(call: Callable[[], object], endpoint: str, *, url: str, retries: int, backoff: float) -> list[dict]:
    """Run one ``mygene`` client call, retrying what may pass (no connection, timeouts, HTTP 429/5xx).

    Raises
    ------
    InputError
        Another HTTP error, an answer that is not mygene.info's JSON list of objects, or failures on every attempt.
    """
    where = f"mygene {url}/v3/{endpoint}"
    last = ""
    for attempt in range(retries):
        try:
            answer = call()
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            if status not in TRANSIENT:
                raise InputError(
                    f"{where}: HTTP {status} ({_one_line(exc.response.text)!r}); check url={url!r}"
                ) from None
            last = f"HTTP {status}"
        except httpx.TransportError as exc:  # refused, unknown host, timeout, connection dropped
            last = f"{type(exc).__name__}: {_one_line(str(exc))}"
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # the client could not read the answer
            raise InputError(
                f"{where}: the answer is not mygene.info's JSON list ({type(exc).__name__}: {_one_line(str(exc))}); "
                f"check url={url!r}"
            ) from None
        else:
            if not isinstance(answer, list) or not all(isinstance(item, dict) for item in answer):
                raise InputError(f"{where}: the answer is not a JSON list of objects; check url={url!r}")
            return answer
        if attempt + 1 < retries:
            wait = min(backoff * 2**attempt, 30.0)
            log.warning("%s: %s; retrying in %.1f s (%d/%d)", where, last, wait, attempt + 1, retries)
            time.sleep(wait)
    raise InputError(
        f"{where}: failed {retries} times ({last}); check url={url!r} or retry later "
        "(finished batches are kept: rerun to resume)"
    )


def pull(
    corpus: Corpus,
    queries: Iterable[str],
    *,
    url: str = DEFAULT_URL,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60.0,
    delay: float | None = None,
    batch_size: int = BATCH,
) -> PullReport:
    """Fetch genes from mygene into a corpus, one transaction per batch (an interrupted pull resumes).

    Parameters
    ----------
    corpus
        A writable :class:`~gene_corpus.corpus.Corpus`.
    queries
        Symbols, aliases, Entrez or Ensembl ids (human genes).
    url
        mygene.info or an internal mirror (the API root, with or without its ``/v3``).
    retries
        Attempts per request on connection failures, timeouts and HTTP 429/5xx.
    backoff
        First wait between attempts in seconds; doubled after each failed attempt (at most 30 s).
    timeout
        Seconds to wait for a server that does not answer.
    delay
        Pause of the ``mygene`` client after each request, in seconds (``None``: the client's own, 1 s).
    batch_size
        Queries per batch and transaction (1 to :data:`BATCH`).

    Returns
    -------
    :class:`PullReport`; misses and duplicate hits are listed, never dropped silently.
    """
    corpus.check_writable()
    if not 1 <= batch_size <= BATCH:
        raise InputError(f"batch_size={batch_size}: mygene.info takes 1 to {BATCH} queries per request")
    wanted = list(dict.fromkeys(q.strip() for q in queries if q.strip()))
    if not wanted:
        raise InputError("queries: no genes to pull; pass symbols, aliases, Entrez or Ensembl ids")
    url = url.rstrip("/").removesuffix("/v3")
    report = PullReport(url=url, queries=len(wanted))
    done = {q for (q,) in corpus.con.execute("SELECT query FROM mygene_queries WHERE url = ?", [url]).fetchall()}
    todo = [q for q in wanted if q not in done]
    report.already_pulled = len(wanted) - len(todo)
    batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
    client = mygene.MyGeneInfo()
    client.url = f"{url}/v3"
    if delay is not None:
        client.delay = delay
    with httpx.Client(timeout=timeout) as http:
        # the client builds an httpx client that waits for ever unless one is set up: give it one with a timeout
        client.http_client, client.http_client_setup = http, True
        _pull_batches(corpus, batches, client, partial(_ask, url=url, retries=retries, backoff=backoff), report)
    return report


def _pull_batches(
    corpus: Corpus, batches: list[list[str]], client: mygene.MyGeneInfo, ask: Callable, report: PullReport
) -> None:
    """Query, fetch and store each batch in its own transaction, filling ``report``."""
    fetched: set[int] = set()  # genes already fetched by this pull (a later batch's hit may repeat one)
    for batch in tqdm(batches, desc="mygene pull", unit="batch", disable=None):
        hits = ask(
            partial(client.querymany, batch, scopes=SCOPES, fields="entrezgene,symbol", species="human", verbose=False),
            "query",
        )
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
        records = (
            ask(partial(client.getgenes, ids, fields=FIELDS, species="human", verbose=False), "gene") if ids else []
        )
        records = [r for r in records if not r.get("notfound")]
        got = {e for e in map(entrez_id_of, records) if e is not None}
        report.unresolved += [[str(e), "no record returned by /v3/gene"] for e in ids if e not in got]
        retrieved = utc_now()
        payload = json.dumps(records, sort_keys=True).encode()
        sha = hashlib.sha256(payload).hexdigest()
        origin = Origin(sha, f"{report.url}/v3/gene", f"mygene.info v3 at {report.url}", retrieved)
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
                    "url": report.url,
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
