"""Embedding sets in the corpus DuckDB file: cached computation, loading, export and import.

Tables (beside the corpus tables, in the same file):

``embedding_sets``
    one row per set: ``name``, ``set_key`` (hash of the vector identity + post-processing), ``raw_key`` (hash of
    the vector identity: model fingerprint, pooling, prefix, max tokens, quantisation, long-text mode; or an imported
    file's sha256), ``spec`` (JSON), ``dim``, ``postprocess`` with its fitted parameters (``.npz`` bytes) and the
    raw content hash they were fitted on, ``fingerprint`` (as of the last complete write), ``updated_at``.
``embedding_vectors``
    raw (not post-processed) vectors keyed by ``(set_name, entrez_id, text_sha256)``; ``symbol`` as embedded.
    Imported genes that do not resolve keep ``entrez_id = -1`` and their file symbol.

A second ``embed`` run computes only genes whose document text changed (new sha256) or is new; vectors with the
same raw identity are copied from other sets instead of recomputed. Each batch of vectors is one transaction,
so a killed run leaves only complete rows and the next run resumes. Sharded runs (``--shard i/n``, or every
rank of ``accelerate launch`` on GPUs / ``torchrun --nproc_per_node N`` on CPU) write
``<db>.shards/<set>/<raw_key>-<i>of<n>.parquet``; the next unsharded run (rank 0, after a barrier over all
ranks) merges them once in one transaction and deletes them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import pickle
import re
import time
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gene_corpus import Corpus
from gene_corpus.atomic import atomic_path
from gene_corpus.errors import InputError
from gene_corpus.gene_lists import resolve_gene_list
from scouter_local.embedding_set import POSTPROCESS_MODES, SET_SOURCES, EmbeddingSet, PostProcessor
from scouter_local.encoders import (
    DEFAULT_BATCH_TOKENS,
    Encoder,
    EncoderSpec,
    check_batching,
    progress_bar,
    resolve_spec,
)
from scouter_local.runtime import launcher_rank

log = logging.getLogger(__name__)

DDL = """
CREATE TABLE IF NOT EXISTS embedding_sets (
    name VARCHAR PRIMARY KEY,
    set_key VARCHAR NOT NULL,
    raw_key VARCHAR NOT NULL,
    spec VARCHAR NOT NULL,
    dim INTEGER,
    postprocess VARCHAR NOT NULL,
    postprocess_params BLOB,
    fitted_on VARCHAR,
    fingerprint VARCHAR,
    updated_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS embedding_vectors (
    set_name VARCHAR NOT NULL,
    entrez_id BIGINT NOT NULL,
    symbol VARCHAR,
    text_sha256 VARCHAR,
    vector FLOAT[] NOT NULL
);
"""
SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
EXPORT_FORMATS = ("scouter-csv", "parquet")
IMPORT_FORMATS = ("csv", "parquet", "pickle")
_ORDER = "ORDER BY entrez_id < 0, entrez_id, symbol"
#: Left-out genes of a gene list named in its warning; the rest are counted.


# ---------------------------------------------------------------------------------------------- helpers
def content_key(payload) -> str:
    """32-hex SHA-256 key of bytes, or of a JSON-serialisable value (keys sorted)."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:32]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def check_set_name(name: str) -> str:
    """Return ``name`` if it is a valid set name (letters, digits, ``_.-``; it names files), else raise."""
    if not SET_NAME.match(name or ""):
        raise InputError(f"set name {name!r} is invalid; use letters, digits, '_', '.' or '-' (e.g. minilm)")
    return name


def sidecar_dir(db_path: str | os.PathLike, kind: str) -> Path:
    """Folder beside the database for derived files: ``<db>.index`` (FAISS) or ``<db>.shards`` (staged shards)."""
    db = Path(db_path)
    return db.with_name(f"{db.name}.{kind}")


def _run(con, sql: str, params: list | None = None) -> None:
    """Execute a statement and consume its result (DuckDB refuses new work while a result is pending)."""
    con.execute(sql, params or []).fetchall()


def _has_tables(con) -> bool:
    names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    return {"embedding_sets", "embedding_vectors"} <= names


def _ensure_tables(con) -> None:
    _run(con, DDL)


def set_row(con, name: str) -> dict | None:
    """The ``embedding_sets`` row of set ``name`` as a dict (``None`` when there is no such set)."""
    if not _has_tables(con):
        return None
    cur = con.execute("SELECT * FROM embedding_sets WHERE name = ?", [name])
    rows = cur.fetchall()
    return dict(zip([d[0] for d in cur.description], rows[0])) if rows else None


def _unknown_set(con, name: str, db_path) -> InputError:
    names = (
        [r[0] for r in con.execute("SELECT name FROM embedding_sets ORDER BY name").fetchall()]
        if _has_tables(con)
        else []
    )
    have = f"sets in it: {', '.join(names)}" if names else "it holds no embedding sets"
    return InputError(
        f"embedding set {name!r} is not in {db_path} ({have}); create it with `scouter-local embed --set {name}`"
    )


def vectors_table(entrez_ids, symbols, shas, vectors: np.ndarray) -> pa.Table:
    """Rows of ``embedding_vectors`` as an Arrow table: ``(n,)`` ids, symbols, text hashes and ``(n, dim)`` vectors."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return pa.table(
        {
            "entrez_id": pa.array(np.asarray(entrez_ids, dtype=np.int64)),
            "symbol": pa.array(list(symbols), type=pa.string()),
            "text_sha256": pa.array(list(shas), type=pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1]),
        }
    )


def _to_matrix(column: pa.ChunkedArray, n: int) -> np.ndarray:
    flat = column.combine_chunks().flatten() if n else pa.array([], pa.float32())
    return np.asarray(flat, dtype=np.float32).reshape(n, -1) if n else np.zeros((0, 0), np.float32)


def _write_vectors(con, set_name: str, table: pa.Table) -> None:
    """Replace the set's rows of these genes with ``table`` (call inside a transaction)."""
    con.register("_new_vectors", table)
    try:
        _run(
            con,
            "DELETE FROM embedding_vectors WHERE set_name = ? AND entrez_id >= 0 AND entrez_id IN "
            "(SELECT entrez_id FROM _new_vectors)",
            [set_name],
        )
        _run(
            con,
            "INSERT INTO embedding_vectors SELECT ?, entrez_id, symbol, text_sha256, CAST(vector AS FLOAT[]) "
            "FROM _new_vectors",
            [set_name],
        )
    finally:
        con.unregister("_new_vectors")


def _read_raw(con, set_name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """``(keys frame [entrez_id, symbol, text_sha256], (n, dim) float32 raw vectors)`` in set order."""
    table = con.sql(
        f"SELECT entrez_id, symbol, text_sha256, vector FROM embedding_vectors WHERE set_name = $name {_ORDER}",
        params={"name": set_name},
    ).to_arrow_table()
    keys = table.select(["entrez_id", "symbol", "text_sha256"]).to_pandas()
    return keys, _to_matrix(table.column("vector"), table.num_rows)


def _content_hash(keys: pd.DataFrame, raw: np.ndarray) -> str:
    digest = hashlib.sha256(keys["entrez_id"].to_numpy(np.int64).tobytes())
    digest.update("\0".join(keys["symbol"].fillna("").astype(str)).encode())
    digest.update(np.ascontiguousarray(raw, dtype=np.float32).tobytes())
    return digest.hexdigest()[:32]


def _set_fingerprint(set_key: str, content: str, params: bytes | None) -> str:
    return content_key(f"{set_key}:{content}:".encode() + (params or b""))


def _finalise(con, set_name: str) -> str:
    """Refit the set's post-processing on all its raw vectors and store it with the new fingerprint (in a
    transaction)."""
    row = set_row(con, set_name)
    keys, raw = _read_raw(con, set_name)
    content = _content_hash(keys, raw)
    params = PostProcessor(row["postprocess"]).fit(raw).to_bytes() if len(raw) else None
    fingerprint = _set_fingerprint(row["set_key"], content, params)
    _run(
        con,
        "UPDATE embedding_sets SET postprocess_params = ?, fitted_on = ?, fingerprint = ?, dim = ?, updated_at = ? "
        "WHERE name = ?",
        [params, content, fingerprint, int(raw.shape[1]) if len(raw) else None, _now(), set_name],
    )
    return fingerprint


def check_set_source(row: dict | None, set_name: str, source: str, verb: str) -> None:
    """Refuse to write a set of another kind (``spec['source']``) under an existing name: the name is taken.

    ``verb`` says what the user should do into another name (``embed``, ``import``, ...).
    """
    held = json.loads(row["spec"]).get("source") if row is not None else None
    if held is not None and held != source:
        raise InputError(f"set {set_name!r} holds {SET_SOURCES.get(held, held)}; {verb} into another `set_name`")


def write_whole_set(con, set_name: str, *, raw_key: str, spec: dict, table: pa.Table) -> str:
    """Replace a set whole (row, vectors and fingerprint) in one transaction; no post-processing.

    Parameters
    ----------
    raw_key
        Hash of what defines the vectors (inputs and parameters); a later run with the same key is a cache hit.
    spec
        How the set was made (stored as JSON; ``source`` says which kind of set).
    table
        From :func:`vectors_table`: one row per gene.

    Returns
    -------
    The set's new fingerprint.
    """
    _ensure_tables(con)
    with _transaction(con):
        _run(con, "DELETE FROM embedding_vectors WHERE set_name = ?", [set_name])
        _run(
            con,
            "INSERT OR REPLACE INTO embedding_sets (name, set_key, raw_key, spec, postprocess, updated_at) "
            "VALUES (?, ?, ?, ?, 'none', ?)",
            [set_name, content_key({"raw": raw_key, "postprocess": "none"}), raw_key, json.dumps(spec), _now()],
        )
        _write_vectors(con, set_name, table)
        return _finalise(con, set_name)


def _transaction(con):
    class _Tx:
        def __enter__(self):
            _run(con, "BEGIN TRANSACTION")

        def __exit__(self, exc_type, *_):
            _run(con, "ROLLBACK" if exc_type else "COMMIT")

    return _Tx()


# ---------------------------------------------------------------------------------------------- embed
@dataclasses.dataclass
class EmbedReport:
    """What :func:`embed_corpus` did.

    Attributes
    ----------
    set_name, model, fingerprint
        The set, the MODEL and the set fingerprint after the run.
    genes
        Genes asked for that have a document (all with ``genes=None``).
    computed, cached, reused, merged
        Vectors run through the model, already in the set with the same text, copied from another set with the
        same model/pooling/prefix/max tokens/quantisation, and merged from staged shard files.
    no_text
        Genes asked for that have no document (nothing to embed).
    left_out
        Genes asked for that the corpus does not know or cannot tell apart (unknown, ambiguous): not embedded.
    chunked, truncated
        Texts longer than ``max_tokens``, embedded as the average of their chunks (``long_texts="chunk"``) or
        from their first chunk only (``long_texts="truncate"``).
    dim, seconds, genes_per_s
        Vector size, wall time, computed genes per second of encoding.
    shard
        ``"i/n"`` for a sharded run (vectors staged, not in the database yet), else ``None``.
    """

    set_name: str
    model: str
    genes: int = 0
    computed: int = 0
    cached: int = 0
    reused: int = 0
    merged: int = 0
    no_text: int = 0
    left_out: list[str] = dataclasses.field(default_factory=list)
    chunked: int = 0
    truncated: int = 0
    dim: int | None = None
    seconds: float = 0.0
    genes_per_s: float | None = None
    fingerprint: str | None = None
    shard: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _wait_for_all_ranks() -> bool:
    """Barrier over the processes of ``accelerate launch`` / ``torchrun``; True on rank 0 (which then merges)."""
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    dist.barrier()
    main = dist.get_rank() == 0
    dist.destroy_process_group()
    return main


def parse_shard(value: str | None) -> tuple[int, int] | None:
    """``"i/n"`` → ``(i, n)`` with ``0 <= i < n``."""
    if value is None:
        return None
    match = re.fullmatch(r"(\d+)/(\d+)", value.strip())
    if not match or not int(match[1]) < int(match[2]):
        raise InputError(f"shard {value!r} is not I/N with 0 <= I < N (e.g. 0/2)")
    return int(match[1]), int(match[2])


def _documents(
    corpus: Corpus, template: str, genes: Iterable[str | int] | None, source: str | None
) -> tuple[pd.DataFrame, int, list[str]]:
    """Documents to embed (sorted by entrez id), the number of requested genes without one, and the requested
    genes left out as unknown or ambiguous (see :func:`resolve_gene_list`)."""
    ids, left_out = (None, []) if genes is None else resolve_gene_list(corpus, genes, source=source)
    docs = corpus.documents(template=template, entrez_ids=ids)[["entrez_id", "symbol", "text", "text_sha256"]]
    missing = 0 if ids is None else len(set(ids) - set(docs["entrez_id"]))
    if missing:
        log.warning("%d requested genes have no document text and are skipped", missing)
    return docs.reset_index(drop=True), missing, left_out


def _missing(con, set_name: str, docs: pd.DataFrame) -> pd.DataFrame:
    """Documents whose (gene, text sha256) has no vector in the set."""
    if not _has_tables(con) or docs.empty:
        return docs
    con.register("_docs", docs)
    try:
        return con.execute(
            "SELECT d.* FROM _docs d ANTI JOIN (SELECT entrez_id, text_sha256 FROM embedding_vectors "
            "WHERE set_name = ?) v USING (entrez_id, text_sha256) ORDER BY entrez_id",
            [set_name],
        ).df()
    finally:
        con.unregister("_docs")


def _reuse(con, set_name: str, raw_key: str, todo: pd.DataFrame) -> int:
    """Copy vectors of ``todo`` genes from other sets with the same raw identity; return how many."""
    con.register("_todo", todo[["entrez_id", "symbol", "text_sha256"]])
    try:
        table = con.sql(
            "SELECT DISTINCT ON (v.entrez_id) v.entrez_id, t.symbol, v.text_sha256, v.vector FROM embedding_vectors v "
            "JOIN embedding_sets s ON v.set_name = s.name JOIN _todo t USING (entrez_id, text_sha256) "
            "WHERE s.raw_key = $raw AND s.name <> $name",
            params={"raw": raw_key, "name": set_name},
        ).to_arrow_table()
    finally:
        con.unregister("_todo")
    if table.num_rows:
        with _transaction(con):
            _write_vectors(con, set_name, table)
    return table.num_rows


def _shard_files(db_path, set_name: str) -> list[Path]:
    folder = sidecar_dir(db_path, "shards") / set_name
    return sorted(folder.glob("*.parquet")) if folder.is_dir() else []


def _merge_shards(con, db_path, set_name: str, raw_key: str, todo: pd.DataFrame) -> int:
    """Insert staged shard vectors still needed by ``todo`` (one transaction), then delete the shard files."""
    files = _shard_files(db_path, set_name)
    stale = [f for f in files if not f.name.startswith(f"{raw_key}-")]
    for f in stale:
        log.warning("ignoring shard file %s: it was made with another model/pooling/prefix/max tokens", f)
    tables = [pq.read_table(f) for f in files if f not in stale]
    if not tables:
        return 0
    table = pa.concat_tables(tables)
    wanted = set(zip(todo["entrez_id"].tolist(), todo["text_sha256"].tolist()))
    keep = [k in wanted for k in zip(table.column("entrez_id").to_pylist(), table.column("text_sha256").to_pylist())]
    table = table.filter(pa.array(keep, pa.bool_()))
    with _transaction(con):
        _write_vectors(con, set_name, table)
    for f in files:
        if f not in stale:
            f.unlink()
    if not any(files[0].parent.iterdir()):
        files[0].parent.rmdir()
    return table.num_rows


def _encode_groups(
    encoder: Encoder, docs: pd.DataFrame, batching: dict, write_every: int, progress: bool, sink
) -> tuple[int, int, float]:
    """Encode ``docs`` longest first in groups of ``write_every``, handing each group's table to ``sink``.

    Returns chunked texts, truncated texts and seconds spent encoding.
    """
    order = np.argsort(-docs["text"].str.len().to_numpy(), kind="stable")
    docs = docs.iloc[order]
    chunked, truncated, seconds = 0, 0, 0.0
    with progress_bar(len(docs), f"Embedding ({encoder.spec.model})", disable=not progress) as bar:
        for start in range(0, len(docs), write_every):
            group = docs.iloc[start : start + write_every]
            began = time.perf_counter()
            vectors = encoder.encode(group["text"].tolist(), bar=bar, **batching)
            seconds += time.perf_counter() - began
            chunked, truncated = chunked + encoder.stats.chunked, truncated + encoder.stats.truncated
            sink(vectors_table(group["entrez_id"], group["symbol"], group["text_sha256"], vectors))
    return chunked, truncated, seconds


def embed_corpus(
    db_path: str | os.PathLike,
    set_name: str,
    model: str | os.PathLike,
    *,
    pooling: str | None = None,
    prefix: str | None = None,
    query_prefix: str | None = None,
    max_tokens: int | None = None,
    quantize: str | None = None,
    long_texts: str = "chunk",
    batch_size: int | None = None,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    genes: Iterable[str | int] | None = None,
    genes_source: str | None = None,
    postprocess: str | None = None,
    template: str = "genept",
    device: str | None = None,
    dtype: str = "auto",
    shard: tuple[int, int] | None = None,
    write_every: int = 256,
    allow_download: bool = False,
    trust_remote_code: bool = False,
    progress: bool = True,
) -> EmbedReport:
    """Embed the corpus documents of ``genes`` (all by default) into the set ``set_name``, computing only what is new.

    Parameters
    ----------
    db_path
        Corpus database (the set's tables are added to it).
    set_name
        Name of the embedding set; a set keeps the model, pooling, prefix, max tokens, quantisation, long-text
        mode and post-processing it was created with (another combination needs another name).
    model
        MODEL, see :mod:`scouter_local.encoders`.
    pooling, prefix, query_prefix, max_tokens, quantize, long_texts
        See :func:`scouter_local.encoders.resolve_spec` for the defaults.
    batch_size, batch_tokens
        At most this many chunks (``None``: no bound) and padded tokens per forward pass; they change speed and
        memory, not the vectors (beyond float rounding).
    genes
        Symbols / ids to embed (resolved through the corpus); ``None`` = every gene with a document. Unknown
        and ambiguous entries are left out with one warning (:func:`resolve_gene_list`) and listed in the
        report's ``left_out``.
    genes_source
        Where ``genes`` came from (a file name), named in that warning.
    postprocess
        ``none``, ``center`` or ``whiten``, fitted on all vectors of the set after each run (default: the set's,
        ``none`` for a new set).
    template
        Document template of :meth:`gene_corpus.Corpus.documents`.
    device, dtype
        See :class:`scouter_local.encoders.Encoder`.
    shard
        ``(i, n)``: compute only every n-th missing gene from the i-th and stage it in
        ``<db>.shards/<set>/`` without writing the database (read-only); the next unsharded run merges.
        Inside ``accelerate launch`` / ``torchrun`` with several processes (``WORLD_SIZE > 1``) each rank takes
        its shard automatically, then rank 0 merges after all ranks are done.
    write_every
        Genes per database transaction (a killed run loses at most this many).

    Returns
    -------
    :class:`EmbedReport`.

    Raises
    ------
    InputError
        Bad set name, model or option, a gene list of which no gene is known, or a set that exists with another
        specification.
    """
    check_set_name(set_name)
    if postprocess is not None and postprocess not in POSTPROCESS_MODES:
        raise InputError(f"post-processing {postprocess!r} is not one of {', '.join(POSTPROCESS_MODES)}")
    check_batching(batch_size, batch_tokens)  # before any model is loaded
    began = time.perf_counter()
    spec = resolve_spec(
        model,
        pooling=pooling,
        prefix=prefix,
        query_prefix=query_prefix,
        max_tokens=max_tokens,
        quantize=quantize,
        long_texts=long_texts,
        allow_download=allow_download,
        trust_remote_code=trust_remote_code,
    )
    raw_key = content_key(spec.identity())
    load = dict(device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    batching = dict(batch_size=batch_size, batch_tokens=batch_tokens)
    genes = None if genes is None else list(genes)
    distributed = shard is None and launcher_rank() is not None
    shard = shard or launcher_rank()
    own = None
    if shard is not None and shard[1] > 1:
        own = report = _embed_shard(
            db_path,
            set_name,
            spec,
            raw_key,
            shard,
            (genes, genes_source),
            template,
            batching,
            write_every,
            load,
            progress,
        )
        if not distributed:
            report.seconds = round(time.perf_counter() - began, 2)
            return report
        if not _wait_for_all_ranks():
            return report

    with Corpus.open(db_path, read_only=False) as corpus:
        con = corpus.con
        _ensure_tables(con)
        row = set_row(con, set_name)
        check_set_source(row, set_name, "embed", "embed")
        mode = postprocess or (row["postprocess"] if row else "none")
        set_key = content_key({"raw": raw_key, "postprocess": mode})
        if row is not None and row["set_key"] != set_key:
            raise InputError(_spec_mismatch(set_name, row, spec, mode))
        if own is None:  # a rank that embedded its shard has warned about the gene list already
            docs, no_text, left_out = _documents(corpus, template, genes, genes_source)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                docs, no_text, left_out = _documents(corpus, template, genes, genes_source)
        report = EmbedReport(set_name, spec.model, genes=len(docs), no_text=no_text, left_out=left_out)
        stored = {"encoder": spec.to_dict(), "postprocess": mode, "template": template, "source": "embed"}
        with _transaction(con):
            _run(
                con,
                "INSERT OR REPLACE INTO embedding_sets (name, set_key, raw_key, spec, dim, postprocess, "
                "postprocess_params, fitted_on, fingerprint, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    set_name,
                    set_key,
                    raw_key,
                    json.dumps(stored),
                    row and row["dim"],
                    mode,
                    row and row["postprocess_params"],
                    row and row["fitted_on"],
                    row and row["fingerprint"],
                    _now(),
                ],
            )
        todo = _missing(con, set_name, docs)
        report.cached = len(docs) - len(todo)
        if len(todo):
            report.reused = _reuse(con, set_name, raw_key, todo)
            report.merged = _merge_shards(con, db_path, set_name, raw_key, todo)
            todo = _missing(con, set_name, todo)
        if len(todo):
            encoder = Encoder(spec, **load)

            def sink(table: pa.Table) -> None:
                with _transaction(con):
                    _write_vectors(con, set_name, table)

            report.chunked, report.truncated, seconds = _encode_groups(
                encoder, todo, batching, write_every, progress, sink
            )
            report.computed = len(todo)
            report.genes_per_s = round(len(todo) / seconds, 2) if seconds else None
        with _transaction(con):
            report.fingerprint = _finalise(con, set_name)
        report.dim = set_row(con, set_name)["dim"]
    if own is not None:  # rank 0 also embedded its own shard before merging
        report.computed, report.chunked = report.computed + own.computed, report.chunked + own.chunked
        report.truncated += own.truncated
    report.seconds = round(time.perf_counter() - began, 2)
    log.info("embedded set %s: %s", set_name, report.to_dict())
    return report


def _spec_mismatch(set_name: str, row: dict, spec: EncoderSpec, mode: str) -> str:
    old = json.loads(row["spec"])
    before = {"long_texts": "chunk"} | old["encoder"] | {"postprocess": old["postprocess"]}
    now = spec.to_dict() | {"postprocess": mode}
    changed = [
        f"{k} {before.get(k)!r} -> {now[k]!r}"
        for k in ("model_fingerprint", "pooling", "prefix", "max_tokens", "quantize", "long_texts", "postprocess")
        if before.get(k) != now[k]
    ]
    return (
        f"set {set_name!r} was made with other settings ({'; '.join(changed)}); use another --set name "
        "(vectors already computed with the same model settings are reused)"
    )


def _embed_shard(
    db_path,
    set_name: str,
    spec: EncoderSpec,
    raw_key: str,
    shard: tuple[int, int],
    genes: tuple,
    template: str,
    batching: dict,
    write_every: int,
    load: dict,
    progress: bool,
) -> EmbedReport:
    """Compute shard ``i/n`` of the missing genes (``genes``: list or ``None``, and where it came from) and stage
    it as a parquet file (database opened read-only)."""
    index, count = shard
    with Corpus.open(db_path, read_only=True) as corpus:
        docs, no_text, left_out = _documents(corpus, template, *genes)
        todo = _missing(corpus.con, set_name, docs)
    mine = todo.iloc[index::count]
    report = EmbedReport(
        set_name,
        spec.model,
        genes=len(docs),
        no_text=no_text,
        left_out=left_out,
        cached=len(docs) - len(todo),
        shard=f"{index}/{count}",
    )
    if "WORLD_SIZE" in os.environ and load["device"] is None:
        import torch

        if torch.cuda.is_available():
            load = load | {"device": f"cuda:{int(os.environ.get('LOCAL_RANK', index))}"}
    tables: list[pa.Table] = []
    if len(mine):
        encoder = Encoder(spec, **load)
        report.chunked, report.truncated, seconds = _encode_groups(
            encoder, mine, batching, write_every, progress, tables.append
        )
        report.computed, report.dim = len(mine), encoder.dim
        report.genes_per_s = round(len(mine) / seconds, 2) if seconds else None
    out = sidecar_dir(db_path, "shards") / set_name / f"{raw_key}-{index}of{count}.parquet"
    if tables:
        with atomic_path(out) as tmp:
            pq.write_table(pa.concat_tables(tables), tmp)
    return report


# ---------------------------------------------------------------------------------------------- load
def _open(db_or_corpus, read_only: bool = True):
    """A context yielding a Corpus for a path, or the given open Corpus (left open)."""
    import contextlib

    if isinstance(db_or_corpus, Corpus):
        return contextlib.nullcontext(db_or_corpus)
    return Corpus.open(db_or_corpus, read_only=read_only)


def load_embedding_set(db_path: str | os.PathLike | Corpus, set_name: str) -> EmbeddingSet:
    """Load a set with its post-processing applied and current gene symbols.

    Parameters
    ----------
    db_path
        Corpus database, or an open :class:`gene_corpus.Corpus`.
    set_name
        The set.

    Returns
    -------
    :class:`EmbeddingSet` with rows ordered by Entrez id (genes without one last), ``vectors`` ``(n_genes, dim)``
    float32 after post-processing, and ``fingerprint`` computed from the stored content.

    Raises
    ------
    InputError
        Unknown set, or a set whose vectors changed after its post-processing was fitted (an interrupted run).
    """
    with _open(db_path) as corpus:
        con = corpus.con
        row = set_row(con, set_name)
        if row is None:
            raise _unknown_set(con, set_name, corpus.path)
        keys, raw = _read_raw(con, set_name)
        if keys.empty:
            raise InputError(
                f"embedding set {set_name!r} holds no vectors yet; run `scouter-local embed --set {set_name}`"
            )
        content = _content_hash(keys, raw)
        if row["postprocess"] != "none" and row["fitted_on"] != content:
            raise InputError(
                f"embedding set {set_name!r} changed after its {row['postprocess']} post-processing was "
                f"fitted (interrupted run?); rerun `scouter-local embed --set {set_name}` to finish it"
            )
        processor = PostProcessor.from_bytes(row["postprocess"], row["postprocess_params"])
        known = keys["entrez_id"] >= 0
        info = corpus.gene_info(keys.loc[known, "entrez_id"].tolist()).set_index("entrez_id")["symbol"]
        symbols = [info.get(e, s) if e >= 0 else s for e, s in zip(keys["entrez_id"], keys["symbol"])]
    return EmbeddingSet(
        name=set_name,
        fingerprint=_set_fingerprint(row["set_key"], content, row["postprocess_params"]),
        symbols=[str(s) for s in symbols],
        entrez_ids=keys["entrez_id"].to_numpy(np.int64),
        vectors=processor.transform(raw),
        spec=json.loads(row["spec"]),
        postprocessor=processor,
    )


def set_genes(db_path: str | os.PathLike | Corpus, set_name: str) -> np.ndarray:
    """``(n_genes,)`` int64 Entrez ids of a set's genes (``-1`` for genes without one), without loading vectors.

    Raises
    ------
    InputError
        Unknown set.
    """
    with _open(db_path) as corpus:
        if set_row(corpus.con, set_name) is None:
            raise _unknown_set(corpus.con, set_name, corpus.path)
        return (
            corpus.con.execute(f"SELECT entrez_id FROM embedding_vectors WHERE set_name = ? {_ORDER}", [set_name])
            .df()["entrez_id"]
            .to_numpy(np.int64)
        )


def list_embedding_sets(db_path: str | os.PathLike | Corpus) -> pd.DataFrame:
    """``name, genes, dim, postprocess, model, fingerprint, updated_at`` of every set in the database."""
    with _open(db_path) as corpus:
        if not _has_tables(corpus.con):
            return pd.DataFrame(columns=["name", "genes", "dim", "postprocess", "model", "fingerprint", "updated_at"])
        frame = corpus.con.execute(
            "SELECT s.name, count(v.entrez_id) AS genes, s.dim, s.postprocess, "
            "coalesce(json_extract_string(s.spec, '$.encoder.model'), json_extract_string(s.spec, '$.file'), "
            "json_extract_string(s.spec, '$.made_from')) AS model, "
            "s.fingerprint, s.updated_at FROM embedding_sets s LEFT JOIN embedding_vectors v ON v.set_name = s.name "
            "GROUP BY ALL ORDER BY s.name"
        ).df()
    return frame


# ---------------------------------------------------------------------------------------------- export
def export_embeddings(
    db_path: str | os.PathLike | Corpus, set_name: str, out: str | os.PathLike, *, format: str = "scouter-csv"
) -> Path:
    """Write a set (post-processed vectors) to a file, atomically.

    ``scouter-csv``: the external-embedding CSV Scouter reads: index = gene symbol, columns ``0..dim-1``, a first
    all-zero ``ctrl`` row (gzip when ``out`` ends in ``.gz``). ``parquet``: columns ``entrez_id, symbol, 0..dim-1``
    with the set's name, fingerprint and spec in the schema metadata key ``scouter_local``.

    Returns
    -------
    The written path.
    """
    if format not in EXPORT_FORMATS:
        raise InputError(f"export format {format!r} is not one of {', '.join(EXPORT_FORMATS)}")
    emb = load_embedding_set(db_path, set_name)
    out = Path(out)
    columns = [str(i) for i in range(emb.dim)]
    if format == "scouter-csv":
        frame = pd.DataFrame(emb.vectors, index=emb.symbols, columns=columns)
        frame = pd.concat([pd.DataFrame(np.zeros((1, emb.dim), np.float32), index=["ctrl"], columns=columns), frame])
        compression = "gzip" if out.suffix == ".gz" else None
        with atomic_path(out) as tmp:
            frame.to_csv(tmp, float_format="%.9g", compression=compression)
    else:
        table = pa.table(
            {"entrez_id": emb.entrez_ids, "symbol": emb.symbols} | {c: emb.vectors[:, i] for i, c in enumerate(columns)}
        )
        meta = {"name": emb.name, "fingerprint": emb.fingerprint, "spec": emb.spec}
        table = table.replace_schema_metadata({"scouter_local": json.dumps(meta)})
        with atomic_path(out) as tmp:
            pq.write_table(table, tmp)
    return out


# ---------------------------------------------------------------------------------------------- import
class _VectorUnpickler(pickle.Unpickler):
    """Unpickler that builds only builtins and NumPy arrays/scalars; any other global is refused."""

    _ALLOWED = {
        (m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")
    } | {("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not allowed")


def safe_load_pickle(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a GenePT-style pickle ``{symbol: list or 1-D array of floats}`` without running arbitrary code.

    Only NumPy array reconstruction is allowed as a pickle global; the result must be a dict of string keys to
    equal-length float vectors.

    Raises
    ------
    InputError
        Any other content (a class, a function call such as ``os.system``, nested objects, ragged vectors).
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            obj = _VectorUnpickler(handle).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise InputError(
            f"{path}: refused as embeddings pickle ({exc}); only dict[str -> list/array of floats] is accepted"
        ) from None
    if not isinstance(obj, dict) or not obj:
        raise InputError(f"{path}: pickle holds {type(obj).__name__}, expected a non-empty dict[str -> vector]")
    out: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise InputError(f"{path}: key {key!r} is not a gene symbol string")
        if isinstance(value, np.ndarray):
            ok = value.dtype.kind in "fiu" and value.squeeze().ndim == 1
        else:
            ok = isinstance(value, (list, tuple)) and all(
                isinstance(v, (float, int)) and not isinstance(v, bool) for v in value
            )
        if not ok:
            raise InputError(f"{path}: value of {key!r} is not a flat list/array of floats")
        out[key] = np.asarray(value, dtype=np.float32).reshape(-1)
    return out


def _detect_format(path: Path) -> str:
    name = path.name.lower()
    head = path.read_bytes()[:4] if path.is_file() else b""
    if name.endswith((".pkl", ".pickle")) or head[:1] == b"\x80":
        return "pickle"
    if name.endswith(".parquet") or head == b"PAR1":
        return "parquet"
    if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")):
        return "csv"
    raise InputError(f"{path}: cannot tell the format from its name; use .csv[.gz], .parquet or .pkl")


def _read_import(path: Path, fmt: str) -> tuple[list[str], np.ndarray | None, np.ndarray]:
    """``(symbols, entrez ids or None, (n, dim) float32 vectors)`` from an embeddings file."""
    if fmt == "pickle":
        data = safe_load_pickle(path)
        dims = {len(v) for v in data.values()}
        if len(dims) != 1:
            raise InputError(f"{path}: vectors have different lengths {sorted(dims)[:5]}")
        return list(data), None, np.stack(list(data.values()))
    if fmt == "parquet":
        frame = pd.read_parquet(path)
        symbols = frame.pop("symbol").astype(str).tolist() if "symbol" in frame else frame.index.astype(str).tolist()
        entrez = frame.pop("entrez_id").to_numpy(np.int64) if "entrez_id" in frame else None
    else:
        sep = "\t" if ".tsv" in path.name.lower() else ","
        frame = pd.read_csv(path, sep=sep, index_col=0)
        symbols, entrez = frame.index.astype(str).tolist(), None
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        line = frame[bad[0]].map(lambda v: not _is_number(v)).to_numpy().argmax()
        raise InputError(f"{path} line {line + 2} column {bad[0]!r}: {frame[bad[0]].iloc[line]!r} is not a number")
    return symbols, entrez, frame.to_numpy(np.float32)


def _is_number(value) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


@dataclasses.dataclass
class EmbeddingImportReport:
    """What :func:`import_embeddings` did: rows read, genes stored, unresolved symbols (kept with entrez -1),
    duplicates dropped (a second row for the same gene), the ``ctrl`` row skipped, dim and set fingerprint."""

    set_name: str
    path: str
    format: str
    rows: int
    genes: int
    unresolved: list[str]
    duplicates: list[str]
    skipped_ctrl: bool
    dim: int
    fingerprint: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def import_embeddings(
    db_path: str | os.PathLike, set_name: str, path: str | os.PathLike, *, format: str | None = None
) -> EmbeddingImportReport:
    """Store vectors from a file as set ``set_name`` (replacing an earlier import into that name), one transaction.

    Formats: Scouter/GenePT CSV (index = symbol, one column per dimension; an all-zero ``ctrl`` row is skipped),
    parquet (``symbol`` [+ ``entrez_id``] + numeric columns, as written by :func:`export_embeddings`) and GenePT
    pickle through :func:`safe_load_pickle`. Symbols are resolved through the corpus; unknown ones are kept with
    ``entrez_id = -1`` under their file symbol.

    Raises
    ------
    InputError
        Unreadable/unsafe file, non-numeric or non-finite values, or a set name holding computed embeddings.
    """
    check_set_name(set_name)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"embeddings file {path} does not exist")
    fmt = format or _detect_format(path)
    if fmt not in IMPORT_FORMATS:
        raise InputError(f"import format {fmt!r} is not one of {', '.join(IMPORT_FORMATS)}")
    symbols, entrez, vectors = _read_import(path, fmt)
    rows = len(symbols)
    skipped_ctrl = False
    if "ctrl" in symbols:
        i = symbols.index("ctrl")
        skipped_ctrl = not np.any(vectors[i])
        if skipped_ctrl:
            keep = np.arange(rows) != i
            symbols, vectors = [s for j, s in enumerate(symbols) if keep[j]], vectors[keep]
            entrez = None if entrez is None else entrez[keep]
    if not len(symbols):
        raise InputError(f"{path}: no gene vectors in the file")
    if not np.isfinite(vectors).all():
        raise InputError(
            f"{path}: vector of {symbols[int(np.argmax(~np.isfinite(vectors).all(1)))]!r} has NaN or infinite values"
        )
    with Corpus.open(db_path, read_only=False) as corpus:
        con = corpus.con
        _ensure_tables(con)
        check_set_source(set_row(con, set_name), set_name, "import", "import")
        if entrez is None or (entrez < 0).any():
            resolved = corpus.resolve(symbols)
            ids = np.asarray([r.entrez_id if r.entrez_id is not None else -1 for r in resolved], dtype=np.int64)
            entrez = ids if entrez is None else np.where(entrez >= 0, entrez, ids)
        unresolved = [s for s, e in zip(symbols, entrez) if e < 0]
        seen: set = set()
        keep = np.ones(len(symbols), bool)
        for j, (s, e) in enumerate(zip(symbols, entrez)):
            key = int(e) if e >= 0 else s
            keep[j] = key not in seen
            seen.add(key)
        duplicates = [s for s, k in zip(symbols, keep) if not k]
        if duplicates:
            log.warning(
                "%s: %d rows name a gene already read (kept the first): %s", path, len(duplicates), duplicates[:5]
            )
        if unresolved:
            log.warning("%s: %d symbols not in the corpus kept as-is: %s", path, len(unresolved), unresolved[:5])
        file_sha = hashlib.sha256(path.read_bytes()).hexdigest()
        raw_key = content_key({"import": file_sha})
        spec = {"source": "import", "file": str(path), "file_sha256": file_sha, "format": fmt, "postprocess": "none"}
        table = vectors_table(
            entrez[keep], [s for s, k in zip(symbols, keep) if k], [None] * int(keep.sum()), vectors[keep]
        )
        fingerprint = write_whole_set(con, set_name, raw_key=raw_key, spec=spec, table=table)
    return EmbeddingImportReport(
        set_name,
        str(path),
        fmt,
        rows,
        int(keep.sum()),
        unresolved,
        duplicates,
        skipped_ctrl,
        int(vectors.shape[1]),
        fingerprint,
    )
