"""Embedding sets in the corpus DuckDB file: their tables, writing a set, loading, listing.

Tables (beside the corpus tables, in the same file):

``embedding_sets``
    one row per set: ``name``, ``set_key`` (hash of the vector identity + post-processing), ``raw_key`` (hash of
    the vector identity: model fingerprint, pooling, prefix, max tokens, quantisation, long-text mode; or an imported
    file's sha256), ``spec`` (JSON), ``dim``, ``postprocess`` with its fitted parameters (``.npz`` bytes) and the
    raw content hash they were fitted on, ``fingerprint`` (as of the last complete write), ``updated_at``.
``embedding_vectors``
    raw (not post-processed) vectors keyed by ``(set_name, entrez_id, text_sha256)``; ``symbol`` as embedded.
    Imported genes that do not resolve keep ``entrez_id = -1`` and their file symbol.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from gene_corpus import Corpus
from gene_corpus.corpus import transaction, utc_now
from gene_corpus.errors import InputError
from scouter_local.embedding.sets import SET_SOURCES, EmbeddingSet, PostProcessor

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


_ORDER = "ORDER BY entrez_id < 0, entrez_id, symbol"


def content_key(payload) -> str:
    """32-hex SHA-256 key of bytes, or of a JSON-serialisable value (keys sorted)."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:32]


def check_set_name(name: str) -> str:
    """Return ``name`` if it is a valid set name (letters, digits, ``_.-``; it names files), else raise."""
    if not SET_NAME.match(name or ""):
        raise InputError(f"set name {name!r} is invalid; use letters, digits, '_', '.' or '-' (e.g. minilm)")
    return name


def sidecar_dir(db_path: str | os.PathLike, kind: str) -> Path:
    """Folder beside the database for derived files: ``<db>.index`` (FAISS) or ``<db>.shards`` (staged shards)."""
    db = Path(db_path)
    return db.with_name(f"{db.name}.{kind}")


def run_sql(con, sql: str, params: list | None = None) -> None:
    """Execute a statement and consume its result (DuckDB refuses new work while a result is pending)."""
    con.execute(sql, params or []).fetchall()


def has_tables(con) -> bool:
    names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    return {"embedding_sets", "embedding_vectors"} <= names


def ensure_tables(con) -> None:
    run_sql(con, DDL)


def set_row(con, name: str) -> dict | None:
    """The ``embedding_sets`` row of set ``name`` as a dict (``None`` when there is no such set)."""
    if not has_tables(con):
        return None
    cur = con.execute("SELECT * FROM embedding_sets WHERE name = ?", [name])
    rows = cur.fetchall()
    return dict(zip([d[0] for d in cur.description], rows[0])) if rows else None


def _unknown_set(con, name: str, db_path) -> InputError:
    names = (
        [r[0] for r in con.execute("SELECT name FROM embedding_sets ORDER BY name").fetchall()]
        if has_tables(con)
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


def write_vectors(con, set_name: str, table: pa.Table) -> None:
    """Replace the set's rows of these genes with ``table`` (call inside a transaction)."""
    con.register("_new_vectors", table)
    try:
        run_sql(
            con,
            "DELETE FROM embedding_vectors WHERE set_name = ? AND entrez_id >= 0 AND entrez_id IN "
            "(SELECT entrez_id FROM _new_vectors)",
            [set_name],
        )
        run_sql(
            con,
            "INSERT INTO embedding_vectors SELECT ?, entrez_id, symbol, text_sha256, CAST(vector AS FLOAT[]) "
            "FROM _new_vectors",
            [set_name],
        )
    finally:
        con.unregister("_new_vectors")


def read_raw(con, set_name: str) -> tuple[pd.DataFrame, np.ndarray]:
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


def finalise(con, set_name: str) -> str:
    """Refit the set's post-processing on all its raw vectors and store it with the new fingerprint (in a
    transaction)."""
    row = set_row(con, set_name)
    keys, raw = read_raw(con, set_name)
    content = _content_hash(keys, raw)
    params = PostProcessor(row["postprocess"]).fit(raw).to_bytes() if len(raw) else None
    fingerprint = _set_fingerprint(row["set_key"], content, params)
    run_sql(
        con,
        "UPDATE embedding_sets SET postprocess_params = ?, fitted_on = ?, fingerprint = ?, dim = ?, updated_at = ? "
        "WHERE name = ?",
        [params, content, fingerprint, int(raw.shape[1]) if len(raw) else None, utc_now(), set_name],
    )
    return fingerprint


def forget_empty_set(con, set_name: str) -> None:
    """Delete the row of set ``set_name`` if it holds no vector and was never finished (a first run that failed
    before writing any), so that a failed run leaves no empty set behind."""
    run_sql(
        con,
        "DELETE FROM embedding_sets WHERE name = ? AND fingerprint IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM embedding_vectors WHERE set_name = ?)",
        [set_name, set_name],
    )


def set_key_of(raw_key: str, postprocess: str) -> str:
    """``set_key`` of a set: its raw identity with its post-processing mode."""
    return content_key({"raw": raw_key, "postprocess": postprocess})


def write_set_row(
    con, set_name: str, *, raw_key: str, spec: dict, postprocess: str = "none", previous: dict | None = None
) -> None:
    """Create or replace the set's ``embedding_sets`` row (call inside a transaction).

    ``spec`` is stored as JSON. The row's dim, fitted post-processing and fingerprint are those of ``previous``
    (the set's row before, ``None`` for a new set) until :func:`finalise` refits them.
    """
    fitted = ("dim", "postprocess_params", "fitted_on", "fingerprint")
    dim, params, fitted_on, fingerprint = (previous[k] for k in fitted) if previous is not None else (None,) * 4
    run_sql(
        con,
        "INSERT OR REPLACE INTO embedding_sets (name, set_key, raw_key, spec, dim, postprocess, "
        "postprocess_params, fitted_on, fingerprint, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            set_name,
            set_key_of(raw_key, postprocess),
            raw_key,
            json.dumps(spec),
            dim,
            postprocess,
            params,
            fitted_on,
            fingerprint,
            utc_now(),
        ],
    )


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
    ensure_tables(con)
    with transaction(con):
        run_sql(con, "DELETE FROM embedding_vectors WHERE set_name = ?", [set_name])
        write_set_row(con, set_name, raw_key=raw_key, spec=spec)
        write_vectors(con, set_name, table)
        return finalise(con, set_name)


def open_corpus(db_or_corpus, read_only: bool = True):
    """A context yielding a Corpus for a path, or the given open Corpus (left open)."""

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
        Unknown set, or an incomplete one: vectors written after its last finished run (an interrupted run).
    """
    with open_corpus(db_path) as corpus:
        con = corpus.con
        row = set_row(con, set_name)
        if row is None:
            raise _unknown_set(con, set_name, corpus.path)
        keys, raw = read_raw(con, set_name)
        if keys.empty:
            raise InputError(
                f"embedding set {set_name!r} holds no vectors yet; run `scouter-local embed --set {set_name}`"
            )
        content = _content_hash(keys, raw)
        if row["fitted_on"] != content:  # vectors written after the last finished run: it stopped half-way
            raise InputError(
                f"embedding set {set_name!r} is incomplete: its vectors changed after its last finished run (a run "
                f"stopped half-way, or a write from outside scouter-local); rerun `scouter-local embed --set "
                f"{set_name}` with the same options to finish it"
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
    with open_corpus(db_path) as corpus:
        if set_row(corpus.con, set_name) is None:
            raise _unknown_set(corpus.con, set_name, corpus.path)
        return (
            corpus.con.execute(f"SELECT entrez_id FROM embedding_vectors WHERE set_name = ? {_ORDER}", [set_name])
            .df()["entrez_id"]
            .to_numpy(np.int64)
        )


def list_embedding_sets(db_path: str | os.PathLike | Corpus) -> pd.DataFrame:
    """``name, genes, dim, postprocess, model, fingerprint, updated_at`` of every set in the database."""
    with open_corpus(db_path) as corpus:
        if not has_tables(corpus.con):
            return pd.DataFrame(columns=["name", "genes", "dim", "postprocess", "model", "fingerprint", "updated_at"])
        frame = corpus.con.execute(
            "SELECT s.name, count(v.entrez_id) AS genes, s.dim, s.postprocess, "
            "coalesce(json_extract_string(s.spec, '$.encoder.model'), json_extract_string(s.spec, '$.file'), "
            "json_extract_string(s.spec, '$.made_from')) AS model, "
            "s.fingerprint, s.updated_at FROM embedding_sets s LEFT JOIN embedding_vectors v ON v.set_name = s.name "
            "GROUP BY ALL ORDER BY s.name"
        ).df()
    return frame
