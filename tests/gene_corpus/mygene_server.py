"""A real HTTP server on 127.0.0.1 that answers like mygene.info v3, from a few hand-written gene records.

Written from mygene.info's documentation (docs.mygene.info; the ``docs/doc`` folder of biothings/mygene.info), not
from this project's import tables:

- ``POST /v3/query`` (form: ``q`` comma-separated terms, ``scopes``, ``fields``, ``species``) answers a JSON list
  with one object per hit, holding ``query`` (the term), ``_id``, ``_score`` and the asked fields; a term without
  hit gives ``{"query": term, "notfound": true}``; a term with several hits gives several objects with the same
  ``query`` (query_service.rst, "Batch queries via POST"). Matching ignores case (the documented ``q=tp53``
  example finds TP53).
- ``POST /v3/gene`` (``ids`` Entrez or Ensembl gene ids, ``fields``, ``species``) answers one object per id, with
  ``query``, ``_id`` and ``_score``, or ``notfound`` (annotation_service.rst, "Batch queries via POST").
- Dotted ``fields`` (``ensembl.gene``) return the nested object (``{"ensembl": {"gene": …}}``, the default
  ``dotfield=false``); the default fields are ``symbol,name,taxid,entrezgene``; ``species`` takes the documented
  common names or taxonomy ids (data.rst, "Species"); errors are ``{"success": false, "error": …}``
  (response_status_codes.rst).
- A gene object holds one value of a field as that value and several as a list. The documented CDK2 object
  (gene_object.json) has ``alias`` as a list, ``ensembl`` as one object, ``uniprot`` as
  ``{"Swiss-Prot": "P24941", "TrEMBL": [...]}`` and ``go.BP`` as a list of ``{"id", "term", "evidence"}``. The
  other records use the other forms: ``go.BP`` as one object (MAP3K21), ``Swiss-Prot`` as a list (CDKN2A, whose
  locus encodes p16INK4a and p14ARF), ``ensembl`` as a list of objects (ABO, with two Ensembl gene ids),
  ``alias`` (IER5L) and ``TrEMBL`` (ABO) as one string, and an Ensembl-only gene whose ``_id`` is its Ensembl id
  and that has no ``entrezgene`` (data.rst, "_id field").

Records are abridged (a few GO terms, a summary's first sentences, the chromosome of ``genomic_pos``; CDK2's values
as documented, the others as NCBI Gene and UniProt give them). Knobs for failure tests: ``fail_next`` answers that
many requests with HTTP 503 first, ``fail_after`` answers 503 once that many requests were answered (a server going
away mid-pull), ``answer_with`` replaces every answer by a fixed ``(status, content type, body)``, ``stall`` waits
that many seconds before answering.
"""

from __future__ import annotations

import csv
import json
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

CDK2 = {
    "_id": "1017",
    "entrezgene": 1017,
    "taxid": 9606,
    "symbol": "CDK2",
    "name": "cyclin dependent kinase 2",
    "type_of_gene": "protein-coding",
    "map_location": "12q13",
    "genomic_pos": {"chr": "12", "end": 55972784, "start": 55966769, "strand": 1},
    "alias": ["CDKN2", "p33(CDK2)"],
    "ensembl": {
        "gene": "ENSG00000123374",
        "protein": ["ENSP00000243067", "ENSP00000266970"],
        "transcript": ["ENST00000266970", "ENST00000354056"],
    },
    "uniprot": {
        "Swiss-Prot": "P24941",
        "TrEMBL": ["A0A024RB10", "A0A024RB77", "B4DDL9", "E7ESI2", "G3V317", "G3V5T9"],
    },
    "summary": "This gene encodes a member of a family of serine/threonine protein kinases that participate in cell "
    "cycle regulation. The encoded protein is the catalytic subunit of the cyclin-dependent protein kinase complex, "
    "which regulates progression through the cell cycle.",
    "go": {
        "BP": [
            {"evidence": "TAS", "id": "GO:0000082", "term": "G1/S transition of mitotic cell cycle"},
            {"evidence": "NAS", "id": "GO:0000086", "pubmed": 1653904, "term": "G2/M transition of mitotic cell cycle"},
            {"evidence": "TAS", "id": "GO:0000086", "term": "G2/M transition of mitotic cell cycle"},
        ],
        "MF": [
            {"evidence": "TAS", "id": "GO:0004674", "term": "protein serine/threonine kinase activity"},
            {
                "evidence": "IDA",
                "id": "GO:0004693",
                "pubmed": 21596315,
                "term": "cyclin-dependent protein serine/threonine kinase activity",
            },
        ],
        "CC": [
            {
                "evidence": "IDA",
                "id": "GO:0000307",
                "pubmed": 8692841,
                "term": "cyclin-dependent protein kinase holoenzyme complex",
            },
            {"evidence": "IEA", "id": "GO:0000781", "term": "chromosome, telomeric region"},
        ],
    },
}
TP53 = {
    "_id": "7157",
    "entrezgene": 7157,
    "taxid": 9606,
    "symbol": "TP53",
    "name": "tumor protein p53",
    "type_of_gene": "protein-coding",
    "map_location": "17p13.1",
    "genomic_pos": {"chr": "17"},
    "alias": ["BCC7", "BMFS5", "LFS1", "P53", "TRP53"],
    "ensembl": {"gene": "ENSG00000141510"},
    "uniprot": {"Swiss-Prot": "P04637", "TrEMBL": ["K7PPA8", "Q53GA5"]},
    "summary": "This gene encodes a tumor suppressor protein containing transcriptional activation, DNA binding, and "
    "oligomerization domains.",
    "go": {
        "BP": [
            {
                "evidence": "IDA",
                "id": "GO:0000122",
                "term": "negative regulation of transcription by RNA polymerase II",
            },
            {"evidence": "IEA", "id": "GO:0000423", "term": "mitophagy"},
        ],
        "MF": [{"evidence": "IDA", "id": "GO:0000976", "term": "transcription cis-regulatory region binding"}],
        "CC": [{"evidence": "IDA", "id": "GO:0000785", "term": "chromatin"}],
    },
}
#: Rat Tp53, the second hit of the documented ``q=tp53`` example: a pull for human genes must not store it.
RAT_TP53 = {
    "_id": "24842",
    "entrezgene": 24842,
    "taxid": 10116,
    "symbol": "Tp53",
    "name": "tumor protein p53",
    "type_of_gene": "protein-coding",
}
MAP3K21 = {
    "_id": "84451",
    "entrezgene": 84451,
    "taxid": 9606,
    "symbol": "MAP3K21",
    "name": "mitogen-activated protein kinase kinase kinase 21",
    "type_of_gene": "protein-coding",
    "map_location": "1q42.2",
    "genomic_pos": {"chr": "1"},
    "alias": ["KIAA1804", "MLK4"],
    "ensembl": {"gene": "ENSG00000143674"},
    "uniprot": {"Swiss-Prot": "Q5TCX8", "TrEMBL": ["A0A1W2PKR9"]},
    "go": {
        "BP": {"evidence": "IEA", "id": "GO:0000165", "term": "MAPK cascade"},
        "MF": [
            {"evidence": "IBA", "id": "GO:0004672", "term": "protein kinase activity"},
            {"evidence": "ISS", "id": "GO:0004706", "term": "JUN kinase kinase kinase activity"},
        ],
        "CC": {"evidence": "IBA", "id": "GO:0005737", "term": "cytoplasm"},
    },
}
CDKN2A = {
    "_id": "1029",
    "entrezgene": 1029,
    "taxid": 9606,
    "symbol": "CDKN2A",
    "name": "cyclin dependent kinase inhibitor 2A",
    "type_of_gene": "protein-coding",
    "map_location": "9p21.3",
    "genomic_pos": {"chr": "9"},
    "alias": ["ARF", "CDK4I", "CDKN2", "INK4A", "P14ARF", "P16INK4A"],
    "ensembl": {"gene": "ENSG00000147889"},
    "uniprot": {"Swiss-Prot": ["P42771", "Q8N726"], "TrEMBL": ["G3XAG3", "K7PML8"]},
    "summary": "This gene generates several transcript variants which differ in their first exons.",
    "go": {
        "BP": [
            {
                "evidence": "IBA",
                "id": "GO:0000079",
                "term": "regulation of cyclin-dependent protein serine/threonine kinase activity",
            },
            {"evidence": "IEA", "id": "GO:0007049", "term": "cell cycle"},
        ],
        "MF": {
            "evidence": "IDA",
            "id": "GO:0004861",
            "term": "cyclin-dependent protein serine/threonine kinase inhibitor activity",
        },
        "CC": [
            {"evidence": "IBA", "id": "GO:0005634", "term": "nucleus"},
            {"evidence": "IDA", "id": "GO:0005634", "term": "nucleus"},
        ],
    },
}
ABO = {
    "_id": "28",
    "entrezgene": 28,
    "taxid": 9606,
    "symbol": "ABO",
    "name": "ABO, alpha 1-3-N-acetylgalactosaminyltransferase and alpha 1-3-galactosyltransferase",
    "type_of_gene": "protein-coding",
    "map_location": "9q34.2",
    "genomic_pos": {"chr": "9"},
    "alias": ["A3GALNT", "A3GALT1", "GTB", "NAGAT"],
    "ensembl": [{"gene": "ENSG00000175164"}, {"gene": "ENSG00000281879"}],
    "uniprot": {"Swiss-Prot": "P16442", "TrEMBL": "A0A089QDC1"},
    "summary": "This gene encodes proteins related to the first discovered blood group system, ABO.",
    "go": {"BP": [{"evidence": "IEA", "id": "GO:0006486", "term": "protein glycosylation"}]},
}
IER5L = {
    "_id": "389792",
    "entrezgene": 389792,
    "taxid": 9606,
    "symbol": "IER5L",
    "name": "immediate early response 5 like",
    "type_of_gene": "protein-coding",
    "map_location": "9q34.11",
    "alias": "bA247A12.2",
    "ensembl": {"gene": "ENSG00000188483"},
    "uniprot": {"Swiss-Prot": "Q5T953"},
}
#: The Ensembl-only gene of data.rst's "_id field" example: no ``entrezgene``, so nothing a corpus can key on.
ENSEMBL_ONLY = {"_id": "ENSG00000274236", "taxid": 9606, "ensembl": {"gene": "ENSG00000274236"}}

RECORDS = [CDK2, TP53, RAT_TP53, MAP3K21, CDKN2A, ABO, IER5L, ENSEMBL_ONLY]
#: Common species names of data.rst's table (the ones a test may pass).
SPECIES = {"human": 9606, "mouse": 10090, "rat": 10116}
DEFAULT_FIELDS = "symbol,name,taxid,entrezgene"
MAX_TERMS = 1000


def _values(node: object, path: list[str]) -> list:
    """Leaf values at a dotted path, through lists at any level."""
    if isinstance(node, list):
        return [v for item in node for v in _values(item, path)]
    if not path:
        return [node]
    return _values(node[path[0]], path[1:]) if isinstance(node, dict) and path[0] in node else []


def _project(node: object, path: list[str]) -> object:
    """The part of ``node`` under a dotted path, keeping its nesting (``None`` when absent)."""
    if not path:
        return node
    if isinstance(node, list):
        parts = [p for p in (_project(item, path) for item in node) if p is not None]
        return parts or None
    if isinstance(node, dict) and path[0] in node:
        inner = _project(node[path[0]], path[1:])
        return None if inner is None else {path[0]: inner}
    return None


def _merge(a: object, b: object) -> object:
    if isinstance(a, dict) and isinstance(b, dict):
        return {**a, **{k: _merge(a[k], v) if k in a else v for k, v in b.items()}}
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [_merge(x, y) for x, y in zip(a, b, strict=True)]
    return b


def _terms(value: str) -> list[str]:
    """Comma-separated terms, each optionally double-quoted (the ``mygene`` client quotes them)."""
    return [t.strip() for t in next(csv.reader([value], skipinitialspace=True), []) if t.strip()]


@dataclass
class Request:
    """One request as the server saw it."""

    path: str
    status: int
    user_agent: str
    content_type: str
    form: dict[str, str]


class MyGeneServer:
    """The server, started on 127.0.0.1 on a free port; ``url`` is its root (the API is under ``/v3``).

    Parameters
    ----------
    records
        Gene objects it serves (default :data:`RECORDS`).
    """

    def __init__(self, records: list[dict] | None = None) -> None:
        self.records = RECORDS if records is None else records
        self.fail_next = 0
        self.fail_after: int | None = None
        self.answer_with: tuple[int, str, bytes] | None = None
        self.stall = 0.0
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                status, content_type, data = server.answer(self.path.split("?")[0].rstrip("/"), form)
                with server._lock:
                    server.requests.append(
                        Request(
                            self.path,
                            status,
                            self.headers.get("User-Agent", ""),
                            self.headers.get("Content-Type", ""),
                            form,
                        )
                    )
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # a short poll: close() returns at once instead of after serve_forever's default 0.5 s
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def _species(self, form: dict) -> set[int] | None:
        names = form.get("species", "all")
        if names == "all":
            return None
        return {SPECIES[s] if s in SPECIES else int(s) for s in names.split(",")}

    def _hit(self, query: str, record: dict, fields: str, score: float) -> dict:
        hit: dict = {"query": query, "_id": record["_id"], "_score": score}
        if fields == "all":
            return {**hit, **record}
        for field in fields.split(","):
            part = _project(record, field.strip().split("."))
            if part is not None:
                hit = _merge(hit, part)
        return hit

    def _genes(self, form: dict) -> list[dict]:
        species = self._species(form)
        return [r for r in self.records if species is None or r.get("taxid") in species]

    def answer(self, path: str, form: dict) -> tuple[int, str, bytes]:
        """(HTTP status, content type, body) for one request."""
        time.sleep(self.stall)
        with self._lock:
            answered = len(self.requests)
            failing = self.fail_next > 0 or (self.fail_after is not None and answered >= self.fail_after)
            self.fail_next = max(0, self.fail_next - 1)
        if self.answer_with is not None:
            return self.answer_with
        if failing:
            return _json(503, {"success": False, "error": "Service Unavailable"})
        fields = form.get("fields", DEFAULT_FIELDS)
        if path == "/v3/query":
            terms = _terms(form.get("q", ""))
            if len(terms) > MAX_TERMS:
                return _json(400, {"success": False, "error": f"Max number of terms is {MAX_TERMS}"})
            scopes = [s.strip().split(".") for s in form.get("scopes", "entrezgene,ensembl.gene,retired").split(",")]
            genes = self._genes(form)
            payload = []
            for term in terms:
                hits = [
                    (r, 22.76 if any(str(v).lower() == term.lower() for v in _values(r, ["symbol"])) else 9.1)
                    for r in genes
                    if any(str(v).lower() == term.lower() for scope in scopes for v in _values(r, scope))
                ]
                hits.sort(key=lambda hit: -hit[1])
                payload += [self._hit(term, r, fields, score) for r, score in hits] or [
                    {"query": term, "notfound": True}
                ]
            return _json(200, payload)
        if path == "/v3/gene":
            ids = _terms(form.get("ids", ""))
            genes = self._genes(form)
            payload = []
            for i in ids[:MAX_TERMS]:  # "the rest will be omitted"
                found = [
                    r
                    for r in genes
                    if i in (r["_id"], str(r.get("entrezgene"))) or i in _values(r, ["ensembl", "gene"])
                ]
                payload += [self._hit(i, r, fields, 21.73) for r in found] or [{"query": i, "notfound": True}]
            return _json(200, payload)
        return _json(404, {"success": False, "error": f"no such endpoint {path}"})

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A client that gave up (the timeout tests) is no error: no traceback on stderr, where a later command's
        output is being read."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _json(status: int, payload: object) -> tuple[int, str, bytes]:
    return status, "application/json; charset=UTF-8", json.dumps(payload).encode()
