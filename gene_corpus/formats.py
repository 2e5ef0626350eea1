"""Input formats of ``corpus import``: detection by header/magic bytes and validated parsing.

Every reader returns a :class:`pandas.DataFrame` of strings (missing values as ``""``) with a ``_line`` column
(1-based line of the row in the file, or record number for JSON/parquet/flat files), after checking that the
required columns exist and that no two rows share the format's key. Any problem raises
:class:`~gene_corpus.errors.InputError` naming the file, the line and the field.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gene_corpus.errors import InputError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Format:
    """One importable file format.

    Attributes
    ----------
    name
        The ``--format`` value.
    container
        ``tsv``, ``parquet``, ``json``, ``jsonl`` or ``dat``.
    columns
        Required columns (detection needs all of them).
    key
        Columns that must be unique over the file's rows.
    order
        Import order within one call: identifier tables first, since text sources are resolved through them.
    """

    name: str
    container: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    order: int


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "gene-info",
            "tsv",
            ("entrez_id", "symbol", "gene_name", "gene_type", "aliases", "ensembl_ids", "uniprot_ids"),
            ("entrez_id",),
            0,
        ),
        Format("gene-aliases", "tsv", ("entrez_id", "symbol", "alias_symbol"), ("entrez_id", "alias_symbol"), 1),
        Format("hgnc", "parquet", ("ensembl_id", "symbol", "alias_symbols", "prev_symbols"), ("symbol",), 2),
        Format(
            "refseq-summaries",
            "tsv",
            ("entrez_id", "symbol", "gene_name", "gene_type", "refseq_summary"),
            ("entrez_id",),
            3,
        ),
        Format("mygene-jsonl", "jsonl", ("_id",), ("_id",), 3),
        Format("go-terms", "tsv", ("go_id", "term", "ontology"), ("go_id",), 4),
        Format(
            "go-parents", "tsv", ("child", "parent", "relationship_type"), ("child", "parent", "relationship_type"), 4
        ),
        Format("gene2go", "tsv", ("entrez_id", "go_id", "evidence", "ontology"), ("entrez_id", "go_id", "evidence"), 5),
        Format("genept-json", "json", ("symbol", "text"), ("symbol",), 6),
        Format("uniprot-tsv", "tsv", ("Entry", "Function [CC]"), ("Entry",), 6),
        Format("uniprot-dat", "dat", ("accession", "function"), ("accession",), 6),
        Format("custom-tsv", "tsv", ("gene", "text"), ("gene",), 6),
    )
}
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"


def decompress(path: Path, data: bytes) -> bytes:
    """The content of a file, gunzipped when it is gzip (detected by magic bytes, not by extension).

    Raises
    ------
    InputError
        Empty, truncated or corrupt file.
    """
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as exc:
            raise InputError(f"{path}: truncated or corrupt gzip ({exc}); download the file again") from None
    if not data.strip():
        raise InputError(f"{path}: file is empty; nothing to import")
    return data


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # a byte-order mark (spreadsheet exports) is not part of the header
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{path} line {line}: not UTF-8 text ({exc.reason}); re-export the file as UTF-8") from None


def detect_format(path: Path, data: bytes) -> str:
    """Name of the format of ``path`` from its magic bytes and header.

    Parameters
    ----------
    path
        The file (used in messages only).
    data
        Its (decompressed) content.
    """
    if data[:4] == _PARQUET_MAGIC:
        import pyarrow.parquet as pq

        try:
            columns = set(pq.ParquetFile(io.BytesIO(data)).schema_arrow.names)
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise InputError(f"{path}: unreadable parquet file ({exc}); download it again") from None
        return _match_columns(path, columns, "parquet")
    head = data[:65536].lstrip()
    if head.startswith(b"ID   "):
        return "uniprot-dat"
    if head.startswith(b"{"):
        first = data.lstrip().split(b"\n", 1)[0]
        try:
            record = json.loads(first)
        except json.JSONDecodeError:
            return "genept-json"  # a pretty-printed JSON object; read_genept_json reports any syntax error
        if isinstance(record, dict) and ("_id" in record or "entrezgene" in record):
            return "mygene-jsonl"
        return "genept-json"
    header = _decode(path, data.split(b"\n", 1)[0]).rstrip("\r").split("\t")
    return _match_columns(path, set(header), "tsv")


def _match_columns(path: Path, columns: set[str], container: str) -> str:
    for fmt in FORMATS.values():
        if fmt.container == container and set(fmt.columns) <= columns:
            return fmt.name
    shown = ", ".join(sorted(columns))[:200]
    raise InputError(f"{path}: unknown format (columns: {shown}); expected one of {', '.join(FORMATS)}; pass `fmt`")


def read(path: Path, fmt: str | None = None) -> tuple[str, pd.DataFrame, bytes]:
    """Read and validate one input file.

    Parameters
    ----------
    path
        The file (plain or gzip).
    fmt
        A name from :data:`FORMATS`; ``None`` detects it.

    Returns
    -------
    fmt
        The format name.
    table
        ``(n_rows, n_columns + 1)`` strings with a ``_line`` column.
    raw
        The file's bytes as stored (for the checksum).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; check the path")
    raw = path.read_bytes()
    data = decompress(path, raw)
    if fmt is None:
        fmt = detect_format(path, data)
    elif fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    spec = FORMATS[fmt]
    if data[:4] == _PARQUET_MAGIC:
        table = _read_parquet(path, data)
    elif spec.container in ("tsv", "parquet"):  # a parquet format given a non-parquet file fails on its columns
        table = _read_tsv(path, _decode(path, data))
    elif spec.container == "json":
        table = _read_genept_json(path, _decode(path, data))
    elif spec.container == "jsonl":
        table = _read_jsonl(path, _decode(path, data))
    else:
        table = _read_uniprot_dat(path, _decode(path, data))
    missing = [c for c in spec.columns if c not in table.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)} for format {fmt} "
            f"(has: {', '.join(c for c in table.columns if c != '_line')[:200]})"
        )
    if table.empty:
        raise InputError(f"{path}: header but no rows; nothing to import")
    _check_duplicates(path, table, spec.key)
    return fmt, table, raw


def _read_tsv(path: Path, text: str) -> pd.DataFrame:
    import pandas as pd

    lines = text.split("\n")
    n_fields = lines[0].count("\t") + 1
    for lineno, line in enumerate(lines[1:], start=2):
        if line.strip() and line.count("\t") + 1 != n_fields:
            raise InputError(
                f"{path} line {lineno}: {line.count(chr(9)) + 1} fields, the header has {n_fields}; "
                "fix or re-export that line"
            )
    try:
        table = pd.read_csv(
            io.StringIO(text), sep="\t", dtype=str, keep_default_na=False, na_values=[], quoting=csv.QUOTE_NONE
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: {str(exc).strip()}; fix or re-export the file") from None
    table["_line"] = range(2, len(table) + 2)
    return table


def _read_parquet(path: Path, data: bytes) -> pd.DataFrame:
    import pandas as pd

    try:
        table = pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise InputError(f"{path}: unreadable parquet file ({exc}); download it again") from None
    table = table.astype("string").fillna("").astype(object)
    table["_line"] = range(1, len(table) + 1)
    return table


def _no_duplicate_keys(path: Path):
    def hook(pairs: list[tuple[str, object]]) -> dict:
        seen: dict = {}
        for key, value in pairs:
            if key in seen:
                raise InputError(f"{path}: duplicate key {key!r} in JSON object; keep one entry per gene")
            seen[key] = value
        return seen

    return hook


def _read_genept_json(path: Path, text: str) -> pd.DataFrame:
    import pandas as pd

    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object {{symbol: text}}, got {type(obj).__name__}")
    bad = next((k for k, v in obj.items() if not isinstance(v, str) or not v.strip()), None)
    if bad is not None:
        raise InputError(f"{path}: entry {bad!r} has no text (expected {{symbol: text}})")
    return pd.DataFrame({"symbol": list(obj), "text": list(obj.values()), "_line": range(1, len(obj) + 1)})


def _read_jsonl(path: Path, text: str) -> pd.DataFrame:
    import pandas as pd

    records = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} line {lineno}: invalid JSON ({exc.msg}); the file may be truncated") from None
        if not isinstance(record, dict) or "_id" not in record:
            raise InputError(f"{path} line {lineno}: field '_id' missing; expected one mygene record per line")
        records.append({"_id": str(record["_id"]), "record": record, "_line": lineno})
    return pd.DataFrame(records, columns=["_id", "record", "_line"])


def _check_duplicates(path: Path, table: pd.DataFrame, key: tuple[str, ...]) -> None:
    dup = table.duplicated(list(key), keep=False)
    if dup.any():
        rows = table[dup]
        first = rows.iloc[0]
        same = rows[(rows[list(key)] == first[list(key)]).all(axis=1)]
        shown = ", ".join(f"{k}={first[k]}" for k in key)
        raise InputError(
            f"{path} line {same['_line'].iloc[1]}: duplicate row for {shown} (first at line {first['_line']}); "
            "keep one row per key"
        )


_ECO = re.compile(r"\s*\{ECO:[^}]*\}")
_PUBMED = re.compile(r"\s*\((?:PubMed|Ref\.)[^)]*\)")
_SPACE = re.compile(r"\s+")


def clean_uniprot_function(text: str) -> str:
    """UniProt ``FUNCTION`` comment without the ``FUNCTION:`` label, evidence tags and citations.

    Parameters
    ----------
    text
        ``Function [CC]`` cell of a UniProt TSV export or the joined ``CC   -!- FUNCTION:`` block of a flat file.
    """
    text = re.sub(r"^\s*FUNCTION:\s*", "", text)
    text = re.sub(r"\s*FUNCTION:\s*", " ", text)
    text = _SPACE.sub(" ", _PUBMED.sub("", _ECO.sub("", text)))
    # "… (By similarity). {ECO:…}." leaves "..": one period per sentence end
    return re.sub(r"\s+\.", ".", re.sub(r"\.(?:\s*\.)+", ".", text)).strip()


def _read_uniprot_dat(path: Path, text: str) -> pd.DataFrame:
    """UniProtKB flat file (``.dat``): one row per entry with accession, gene names, GeneIDs and FUNCTION."""
    import pandas as pd

    rows: list[dict] = []
    entry: dict | None = None
    in_function = False
    for lineno, line in enumerate(text.split("\n"), start=1):
        code, body = line[:2], line[5:]
        if code == "ID":
            entry = {"accession": "", "gene_name": "", "gene_ids": [], "function": [], "_line": lineno}
            in_function = False
            continue
        if entry is None:
            if line.strip():
                raise InputError(f"{path} line {lineno}: expected an 'ID' line to start a UniProt entry")
            continue
        if code == "AC" and not entry["accession"]:
            entry["accession"] = body.split(";")[0].strip()
        elif code == "GN" and not entry["gene_name"]:
            match = re.search(r"Name=([^;{]+)", body)
            entry["gene_name"] = match.group(1).strip() if match else ""
        elif code == "DR" and body.startswith("GeneID;"):
            entry["gene_ids"].append(body.split(";")[1].strip())
        elif code == "CC":
            if body.startswith("-!- "):
                in_function = body.startswith("-!- FUNCTION:")
                if in_function:
                    entry["function"].append(body[4:])
            elif in_function and not body.startswith("----"):
                entry["function"].append(body.strip())
            else:
                in_function = False
        elif code == "//":
            if not entry["accession"]:
                raise InputError(f"{path} line {entry['_line']}: entry has no AC line (field accession)")
            rows.append(entry)
            entry = None
    if entry is not None:
        raise InputError(f"{path} line {entry['_line']}: entry not closed by '//'; the file may be truncated")
    table = pd.DataFrame(rows, columns=["accession", "gene_name", "gene_ids", "function", "_line"])
    table["gene_ids"] = table["gene_ids"].map(";".join)
    table["function"] = table["function"].map(" ".join)
    return table
