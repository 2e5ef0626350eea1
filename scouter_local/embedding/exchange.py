"""Embedding files in and out: export a set (Scouter CSV, parquet) and import one (CSV, parquet, GenePT pickle through
a loader that runs no code).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gene_corpus import Corpus
from gene_corpus.errors import InputError
from gene_corpus.files import atomic_path
from scouter_local.embedding.store import (
    check_set_name,
    check_set_source,
    content_key,
    ensure_tables,
    load_embedding_set,
    set_row,
    vectors_table,
    write_whole_set,
)

log = logging.getLogger(__name__)


EXPORT_FORMATS = ("scouter-csv", "parquet")


IMPORT_FORMATS = ("csv", "parquet", "pickle")


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
        ensure_tables(con)
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
