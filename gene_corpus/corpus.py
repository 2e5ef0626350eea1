"""The gene corpus: a DuckDB file of genes, aliases, texts with provenance, GO, and per-gene documents."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import duckdb
import pandas as pd
from tqdm.auto import tqdm

from gene_corpus import formats
from gene_corpus.checks import names_of
from gene_corpus.documents import DEFAULT_TEMPLATE, TEMPLATES, documents_sql, go_text_sql
from gene_corpus.errors import InputError
from gene_corpus.mygene_records import records_to_tables
from gene_corpus.resolve import Resolution, SymbolSuggester, resolve_queries
from gene_corpus.schema import DDL, KEYS, PROVENANCE, SCHEMA_VERSION, TEXT_SOURCES

log = logging.getLogger(__name__)
ONTOLOGIES = ("BP", "MF", "CC")
GO_TEXT_VERSION = "top-5 GO term names per ontology (experimental > curated > IEA, then most evidence codes)"


@dataclass
class ImportReport:
    """What one imported file (or mygene batch) did to the database.

    Attributes
    ----------
    path, format, sha256
        The file, its detected or given format and the checksum of its bytes.
    rows_read
        Data rows in the file.
    rows_added, rows_updated
        Table rows inserted / changed, summed over the tables the format writes.
    skipped
        True when a file with this checksum was already imported (nothing changed).
    unresolved
        ``[source_key, reason]`` for every row whose gene could not be identified (also stored in ``unresolved``).
    notes
        Anything else worth knowing (rows without text, …).
    seconds
        Time spent reading and loading this file (the GO text derivation after the last file is not included).
    """

    path: str
    format: str
    sha256: str
    rows_read: int = 0
    rows_added: int = 0
    rows_updated: int = 0
    skipped: bool = False
    unresolved: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Origin:
    """Provenance stamped on the rows from one source: its ``files`` row, path or URL, version and time."""

    file_sha256: str | None
    origin: str
    source_version: str
    retrieved_at: dt.datetime


def utc_now() -> dt.datetime:
    """The current UTC time without time zone, to the second (as stored in TIMESTAMP columns)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def _split(value: str, sep: str = "|") -> list[str]:
    return [v.strip() for v in value.split(sep) if v.strip()] if value else []


def _text_rows(
    entrez_ids: Iterable[int], source: str, texts: Iterable[str], keys: Iterable[str], origin: Origin
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {"entrez_id": list(entrez_ids), "text": [" ".join(t.split()) for t in texts], "source_key": list(keys)}
    )
    frame = frame[frame["text"] != ""]
    return frame.assign(
        source=source,
        sha256=[hashlib.sha256(t.encode()).hexdigest() for t in frame["text"]],
        origin=origin.origin,
        source_version=origin.source_version,
        retrieved_at=origin.retrieved_at,
        file_sha256=origin.file_sha256,
    )


def _alias_rows(pairs: pd.DataFrame, kind: str, origin: Origin) -> pd.DataFrame:
    """``pairs`` has ``entrez_id, alias``; empty aliases are dropped, duplicates removed."""
    pairs = pairs[pairs["alias"].astype(str).str.len() > 0].drop_duplicates(["alias", "entrez_id"])
    return pairs.assign(alias_key=pairs["alias"].str.upper(), kind=kind, file_sha256=origin.file_sha256)


def _explode(frame: pd.DataFrame, column: str, sep: str = "|") -> pd.DataFrame:
    out = frame.assign(alias=frame[column].map(lambda v: _split(v, sep))).explode("alias")
    return out[out["alias"].notna()][["entrez_id", "alias"]]


def _int_column(table: pd.DataFrame, column: str, path: str) -> pd.Series:
    values = pd.to_numeric(table[column], errors="coerce")
    bad = values.isna() | (values != values.round())
    if bad.any():
        row = table[bad].iloc[0]
        raise InputError(f"{path} line {row['_line']} field {column}: {row[column]!r} is not an integer id")
    return values.astype("int64")


def full_disk(exc: BaseException, where: str = "the database") -> InputError | None:
    """One :class:`InputError` line for a DuckDB write that failed because the disk is full; ``None`` otherwise."""
    if isinstance(exc, duckdb.Error) and "no space left" in str(exc).lower():
        return InputError(
            f"{where} cannot be written: no space left on its disk; free some space and rerun (the database keeps "
            "its last complete state)"
        )
    return None


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection, where: str = "the database") -> Iterator[None]:
    """One DuckDB transaction on ``con``: committed when the block ends, rolled back (nothing kept) on any
    exception; a full disk is one :class:`InputError` line naming ``where``."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException as exc:
        with contextlib.suppress(duckdb.Error):  # a failed commit on a full disk leaves nothing to roll back
            con.execute("ROLLBACK")
        failure = full_disk(exc, where)
        if failure is not None:
            raise failure from exc
        raise


class Corpus:
    """A gene corpus database (DuckDB).

    Use :meth:`open` as a context manager. ``con`` is the DuckDB connection; other stages add their own tables
    (e.g. embeddings) to the same file.

    Parameters
    ----------
    con
        An open connection whose schema exists.
    path
        The database file.
    read_only
        Whether ``con`` was opened read-only.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, read_only: bool) -> None:
        self.con = con
        self.path = path
        self.read_only = read_only
        self._suggester: SymbolSuggester | None = None

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls, db_path: str | os.PathLike, read_only: bool = False, *, allow_foreign_tables: bool = False
    ) -> "Corpus":
        """Open (and with ``read_only=False`` create) a corpus database.

        Parameters
        ----------
        db_path
            The DuckDB file.
        read_only
            Open for reading only (the file must hold a corpus).
        allow_foreign_tables
            Write the corpus tables into a database that holds another program's tables (refused by default).

        Raises
        ------
        InputError
            The file is missing (read-only), locked by another process, not a gene corpus database (read-only), or
            holds another program's tables and no corpus (writing, unless ``allow_foreign_tables``).
        """
        path = Path(db_path)
        if read_only and not path.is_file():
            raise InputError(
                f"database {path} does not exist; create it with `scouter-local corpus import --db {path} FILE`"
            )
        existed = path.exists()
        try:
            con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            detail = str(exc).splitlines()[0]
            if not existed:  # what this failed attempt created (a full disk leaves a cut header)
                for made in (path, path.with_name(f"{path.name}.wal")):
                    made.unlink(missing_ok=True)
            failure = full_disk(exc, f"database {path}")
            if failure is not None:
                raise failure from None
            if "lock" in detail.lower():
                raise InputError(
                    f"database {path} is in use by another process ({detail}); close that program or wait, then retry"
                ) from None
            raise InputError(f"database {path} cannot be opened ({detail}); is it a DuckDB file?") from None
        except duckdb.ConnectionException as exc:
            raise InputError(
                f"database {path} is already open in this process with other settings ({str(exc).splitlines()[0]}); "
                "reuse that Corpus or close it first"
            ) from None
        corpus = cls(con, path, read_only)
        try:
            if read_only:
                corpus._check_schema()
            else:
                if not allow_foreign_tables:
                    corpus._refuse_foreign_tables()
                corpus._create_schema()
        except BaseException:
            con.close()
            raise
        return corpus

    def _refuse_foreign_tables(self) -> None:
        """An :class:`InputError` if the database holds tables but no corpus (a file of another program)."""
        tables = [
            r[0]
            for r in self.con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
            ).fetchall()
        ]
        try:
            ours = (
                "meta" in tables
                and self.con.execute("SELECT count(*) FROM meta WHERE key = 'schema_version'").fetchall()[0][0]
            )
        except duckdb.Error:
            ours = False
        if tables and not ours:
            more = f" and {len(tables) - 5} more" if len(tables) > 5 else ""
            raise InputError(
                f"database {self.path} holds tables of another program ({', '.join(tables[:5])}{more}) and no gene "
                f"corpus; use a new database file, or pass allow_foreign_tables=True to add the corpus tables "
                "beside them"
            )

    def _create_schema(self) -> None:
        with self.transaction():
            self.con.execute(DDL)
            if not self.con.execute("SELECT count(*) FROM meta WHERE key = 'schema_version'").fetchall()[0][0]:
                self.con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
            self.con.execute(f"CREATE OR REPLACE VIEW documents AS {documents_sql(DEFAULT_TEMPLATE)}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Corpus]:
        """One DuckDB transaction (:func:`transaction`) on this database."""
        with transaction(self.con, f"database {self.path}"):
            yield self

    def _check_schema(self) -> None:
        tables = {r[0] for r in self.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        missing = {"genes", "aliases", "texts", "files"} - tables
        if missing:
            raise InputError(
                f"database {self.path} is not a gene corpus (no table {', '.join(sorted(missing))}); "
                f"create it with `scouter-local corpus import --db {self.path} FILE`"
            )

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    def __enter__(self) -> "Corpus":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ writing helpers
    def _upsert(self, table: str, frame: pd.DataFrame, update: bool = True) -> tuple[int, int]:
        """Insert new keys and (``update``) rewrite rows whose values changed; returns (added, updated)."""
        if frame.empty:
            return 0, 0
        keys = KEYS[table]
        columns = [c for c in frame.columns if not c.startswith("_")]
        values = [c for c in columns if c not in keys and c not in PROVENANCE]
        frame = frame[columns].drop_duplicates(list(keys))
        self.con.register("_new", frame)
        try:
            on = " AND ".join(f"o.{k} = n.{k}" for k in keys)
            updated = 0
            if update and values:
                changed = " OR ".join(f"o.{c} IS DISTINCT FROM n.{c}" for c in values)
                assign = ", ".join(f"{c} = n.{c}" for c in columns if c not in keys)
                updated = self.con.execute(
                    f"UPDATE {table} AS o SET {assign} FROM _new n WHERE {on} AND ({changed})"
                ).fetchall()[0][0]
            names = ", ".join(columns)
            added = self.con.execute(
                f"INSERT INTO {table} ({names}) SELECT {', '.join('n.' + c for c in columns)} FROM _new n "
                f"WHERE NOT EXISTS (SELECT 1 FROM {table} o WHERE {on})"
            ).fetchall()[0][0]
        finally:
            self.con.unregister("_new")
        return int(added), int(updated)

    def _require_genes(self, path: str, fmt: str) -> None:
        if not self.con.execute("SELECT count(*) FROM genes").fetchall()[0][0]:
            raise InputError(
                f"{path}: format {fmt} is resolved through gene identifiers, but the database has none; "
                "import the gene_ids files (gene_info, gene_aliases, hgnc) first or in the same call"
            )

    # ------------------------------------------------------------------ import
    def import_files(
        self, paths: Iterable[str | os.PathLike], fmt: str | None = None, *, source_version: str | None = None
    ) -> list[ImportReport]:
        """Import files in one transaction (all or nothing).

        Files are imported identifier tables first, whatever their order on the command line. A file whose
        checksum was already imported is skipped. Text sources keyed by symbol (GenePT, UniProt, custom) are
        resolved through the identifier tables; rows that do not resolve are reported and kept in ``unresolved``.

        Parameters
        ----------
        paths
            Files (plain or gzip; formats in :data:`gene_corpus.formats.FORMATS`) or folders (every file in them).
        fmt
            Force one format for all files; ``None`` detects each file's format from its header.
        source_version
            Recorded on every row; default ``"<file name> sha256:<first 12 hex digits>"``.

        Returns
        -------
        One :class:`ImportReport` per distinct file, in import order.

        Raises
        ------
        InputError
            Any bad file; the database is left exactly as before.
        """
        self.check_writable()
        parsed = []
        seen: set[str] = set()
        files = [
            f
            for p in map(Path, paths)
            for f in (
                sorted(c for c in p.iterdir() if c.is_file() and not c.name.startswith(".")) if p.is_dir() else [p]
            )
        ]
        for path in files:
            start = time.perf_counter()
            name, table, raw = formats.read(path, fmt)
            sha = hashlib.sha256(raw).hexdigest()
            if sha in seen:
                continue
            seen.add(sha)
            parsed.append(
                (formats.FORMATS[name].order, str(path), name, table, sha, len(raw), time.perf_counter() - start)
            )
        parsed.sort(key=lambda p: p[0])
        reports = []
        with self.transaction():
            go_changed = False
            for _, path, name, table, sha, size, read_seconds in tqdm(parsed, desc="import", unit="file", disable=None):
                start = time.perf_counter() - read_seconds
                report = ImportReport(path=path, format=name, sha256=sha, rows_read=len(table))
                reports.append(report)
                if self.con.execute("SELECT count(*) FROM files WHERE sha256 = ?", [sha]).fetchall()[0][0]:
                    report.skipped = True
                    report.notes.append("already imported (same sha256); nothing changed")
                    report.seconds = time.perf_counter() - start
                    continue
                retrieved = dt.datetime.fromtimestamp(Path(path).stat().st_mtime, dt.timezone.utc).replace(
                    tzinfo=None, microsecond=0
                )
                origin = Origin(sha, path, source_version or f"{Path(path).name} sha256:{sha[:12]}", retrieved)
                changes = getattr(self, "_load_" + name.replace("-", "_"))(table, origin, report)
                for tbl, (added, updated) in changes.items():
                    report.rows_added += added
                    report.rows_updated += updated
                    go_changed |= tbl in ("go_annotations", "go_terms") and added + updated > 0
                self.con.execute(
                    "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        sha,
                        path,
                        Path(path).name,
                        name,
                        size,
                        origin.source_version,
                        retrieved,
                        utc_now(),
                        report.rows_read,
                        report.rows_added,
                        report.rows_updated,
                    ],
                )
                report.seconds = time.perf_counter() - start
            if go_changed:
                self.refresh_go_texts()
        for report in reports:
            log.info(
                "%s (%s): %d rows read, %d added, %d updated%s",
                report.path,
                report.format,
                report.rows_read,
                report.rows_added,
                report.rows_updated,
                " (skipped: already imported)" if report.skipped else "",
            )
        return reports

    def check_writable(self) -> None:
        """Raise :class:`InputError` when the corpus was opened read-only."""
        if self.read_only:
            raise InputError(f"database {self.path} is open read-only; open it with read_only=False to write")

    def _genes_frame(self, table: pd.DataFrame, path: str, origin: Origin, **columns: str) -> pd.DataFrame:
        frame = pd.DataFrame({"entrez_id": _int_column(table, "entrez_id", path)})
        for target, source in columns.items():
            frame[target] = table[source].where(table[source] != "", None) if source in table else None
        return frame.assign(file_sha256=origin.file_sha256)

    def _load_gene_info(self, table: pd.DataFrame, origin: Origin, report: ImportReport) -> dict:
        genes = self._genes_frame(
            table,
            origin.origin,
            origin,
            symbol="symbol",
            name="gene_name",
            gene_type="gene_type",
            chromosome="chromosome",
            map_location="map_location",
        )
        genes["ensembl_ids"] = table["ensembl_ids"].map(_split)
        genes["uniprot_ids"] = table["uniprot_ids"].map(_split)
        ids = table.assign(entrez_id=genes["entrez_id"])
        names = _explode(ids, "aliases")
        names = names[names["alias"] != ids.set_index("entrez_id").loc[names["entrez_id"], "symbol"].to_numpy()]
        aliases = pd.concat(
            [_alias_rows(names, "alias", origin), _alias_rows(_explode(ids, "ensembl_ids"), "ensembl", origin)]
        )
        return {"genes": self._upsert("genes", genes), "aliases": self._upsert("aliases", aliases, update=False)}

    def _load_gene_aliases(self, table: pd.DataFrame, origin: Origin, report: ImportReport) -> dict:
        genes = self._genes_frame(table, origin.origin, origin, symbol="symbol")
        pairs = pd.DataFrame({"entrez_id": genes["entrez_id"], "alias": table["alias_symbol"]})[
            table["alias_symbol"] != table["symbol"]
        ]
        genes = genes.drop_duplicates("entrez_id")
        return {
            "genes": self._upsert("genes", genes, update=False),
            "aliases": self._upsert("aliases", _alias_rows(pairs, "alias", origin), update=False),
        }

    def _load_refseq_summaries(self, table: pd.DataFrame, origin: Origin, report: ImportReport) -> dict:
        genes = self._genes_frame(
            table, origin.origin, origin, symbol="symbol", name="gene_name", gene_type="gene_type"
        )
        texts = _text_rows(genes["entrez_id"], "ncbi_summary", table["refseq_summary"], table["entrez_id"], origin)
        if len(texts) < len(table):
            report.notes.append(f"{len(table) - len(texts)} rows without a summary")
        no_symbol = genes["symbol"].isna()
        if no_symbol.any():
            report.notes.append(
                f"{int(no_symbol.sum())} rows without a symbol "
                f"(e.g. Entrez {genes.loc[no_symbol, 'entrez_id'].iloc[0]}): "
                "texts kept, documents only once a gene id file names these genes"
            )
        return {"genes": self._upsert("genes", genes[~no_symbol], update=False), "texts": self._upsert("texts", texts)}

    def _load_hgnc(self, table: pd.DataFrame, origin: Origin, report: ImportReport) -> dict:
        self._require_genes(origin.origin, "hgnc")
        by_ensembl = self.con.execute("SELECT alias_key AS ensembl, entrez_id FROM aliases WHERE kind = 'ensembl'").df()
        by_symbol = self.con.execute("SELECT upper(symbol) AS key, entrez_id, symbol AS current FROM genes").df()
        rows = table.assign(ensembl=table["ensembl_id"].str.upper(), key=table["symbol"].str.upper())
        via_ensembl: dict[int, set[int]] = {}
        for line, entrez_id in rows.merge(by_ensembl, on="ensembl")[["_line", "entrez_id"]].itertuples(index=False):
            via_ensembl.setdefault(line, set()).add(entrez_id)
        via_symbol: dict[int, set[int]] = {}
        for line, entrez_id in rows.merge(by_symbol, on="key")[["_line", "entrez_id"]].itertuples(index=False):
            via_symbol.setdefault(line, set()).add(entrez_id)
        mapped, unresolved = [], []
        for line, symbol in zip(rows["_line"], rows["symbol"]):
            ens, sym = via_ensembl.get(line, set()), via_symbol.get(line, set())
            choice = (
                ens
                if len(ens) == 1
                else (ens & sym if len(ens & sym) == 1 else sym if not ens and len(sym) == 1 else set())
            )
            if choice:
                mapped.append((line, next(iter(choice))))
            else:
                reason = (
                    "no Entrez gene with this Ensembl id or symbol"
                    if not ens | sym
                    else f"maps to several Entrez genes {sorted(ens | sym)}"
                )
                unresolved.append([symbol, reason])
        ids = rows.merge(pd.DataFrame(mapped, columns=["_line", "entrez_id"]), on="_line")
        current = by_symbol.set_index("entrez_id")["current"]
        renamed = ids[ids["symbol"] != current.reindex(ids["entrez_id"]).to_numpy()].rename(columns={"symbol": "alias"})
        aliases = pd.concat(
            [
                _alias_rows(_explode(ids, "alias_symbols"), "alias", origin),
                _alias_rows(_explode(ids, "prev_symbols"), "previous", origin),
                _alias_rows(renamed[["entrez_id", "alias"]], "alias", origin),
                _alias_rows(ids[["entrez_id"]].assign(alias=ids["ensembl_id"]), "ensembl", origin),
            ]
        )
        changes = {"aliases": self._upsert("aliases", aliases, update=False)}
        changes["unresolved"] = self._record_unresolved(unresolved, origin, report)
        return changes

    def _record_unresolved(self, rows: list[list[str]], origin: Origin, report: ImportReport) -> tuple[int, int]:
        """Report and store ``[source_key, reason]`` rows that could not be mapped to a gene."""
        report.unresolved.extend(rows)
        frame = pd.DataFrame(rows, columns=["source_key", "reason"]).assign(file_sha256=origin.file_sha256)
        return self._upsert("unresolved", frame)

    def _resolve_keys(self, keys: list[str], origin: Origin, report: ImportReport) -> tuple[pd.Series, tuple[int, int]]:
        """Entrez id per key (``<NA>`` where unresolved); reasons recorded; two keys for one gene keep the exact one."""
        resolutions = self.resolve(keys)
        unresolved, winner = [], {}
        for r in resolutions:
            if r.entrez_id is None:
                detail = (
                    f"candidates {', '.join(r.candidates)}"
                    if r.how == "ambiguous"
                    else (
                        f"did you mean {', '.join(r.candidates)}" if r.candidates else "not a known symbol, alias or id"
                    )
                )
                unresolved.append([r.query, f"{r.how}: {detail}"])
                continue
            other = winner.get(r.entrez_id)
            if other is None or (r.how == "exact" and other.how != "exact"):
                if other is not None:
                    unresolved.append(
                        [other.query, f"duplicate: same gene {r.symbol} ({r.entrez_id}) as {r.query!r}, which was kept"]
                    )
                winner[r.entrez_id] = r
            else:
                unresolved.append(
                    [r.query, f"duplicate: same gene {r.symbol} ({r.entrez_id}) as {other.query!r}, which was kept"]
                )
        kept = {r.query: r.entrez_id for r in winner.values()}
        ids = pd.Series([kept.get(k) for k in keys], dtype="Int64")
        return ids, self._record_unresolved(unresolved, origin, report)

    def _keyed_texts(
        self, keys: pd.Series, texts: pd.Series, source: str, origin: Origin, report: ImportReport
    ) -> dict:
        ids, unresolved = self._resolve_keys(list(keys), origin, report)
        ok = ids.notna().to_numpy()
        rows = _text_rows(ids[ok].astype("int64"), source, texts[ok], keys[ok], origin)
        return {"texts": self._upsert("texts", rows), "unresolved": unresolved}

    def _load_genept_json(self, table: pd.DataFrame, origin: Origin, report: ImportReport) -> dict:
        self._require_genes(origin.origin, "genept-json")
        return self._keyed_texts(table["symbol"], table["text"], "genept", origin, report)

    def _load_custom_tsv(self, table: pd.DataFrame, origin: Origin, report: ImportReport) -> dict:
        self._require_genes(origin.origin, "custom-tsv")
        return self._keyed_texts(table["gene"], table["text"], "custom", origin, report)

    def _load_uniprot_tsv(self, table: pd.DataFrame, origin: Origin, report: ImportReport) -> dict:
        gene_name = (
            table["Gene Names (primary)"]
            if "Gene Names (primary)" in table
            else table.get("Gene Names", pd.Series("", index=table.index)).str.split(" ").str[0].fillna("")
        )
        frame = pd.DataFrame(
            {
                "accession": table["Entry"],
                "gene_name": gene_name.str.split(";").str[0].str.strip(),
                "gene_ids": table.get("GeneID", pd.Series("", index=table.index)),
                "function": table["Function [CC]"],
            }
        )
        return self._load_uniprot(frame, origin, report)

    def _load_uniprot_dat(self, table: pd.DataFrame, origin: Origin, report: ImportReport) -> dict:
        return self._load_uniprot(table, origin, report)

    def _load_uniprot(self, frame: pd.DataFrame, origin: Origin, report: ImportReport) -> dict:
        """``frame``: accession, gene_name, gene_ids (``;``-separated Entrez ids), function (raw FUNCTION text).

        The gene is the entry's GeneID cross-reference when there is exactly one, else the gene whose UniProt
        ids list the accession, else the primary gene name through the resolver.
        """
        self._require_genes(origin.origin, "uniprot")
        frame = frame.assign(function=frame["function"].map(formats.clean_uniprot_function))
        empty = frame["function"] == ""
        if empty.any():
            report.notes.append(f"{int(empty.sum())} entries without a FUNCTION comment")
        frame = frame[~empty].reset_index(drop=True)
        by_accession: dict[str, set[int]] = {}
        for accession, entrez_id in self.con.execute(
            "SELECT DISTINCT unnest(uniprot_ids), entrez_id FROM genes"
        ).fetchall():
            by_accession.setdefault(accession, set()).add(entrez_id)
        keys = []
        for accession, gene_name, gene_ids in zip(frame["accession"], frame["gene_name"], frame["gene_ids"]):
            ids = _split(gene_ids, ";")
            hits = by_accession.get(accession, set())
            keys.append(
                ids[0] if len(ids) == 1 else str(next(iter(hits))) if len(hits) == 1 else gene_name or accession
            )
        return self._keyed_texts(pd.Series(keys), frame["function"], "uniprot_function", origin, report)

    def _load_gene2go(self, table: pd.DataFrame, origin: Origin, report: ImportReport) -> dict:
        bad = ~table["ontology"].isin(ONTOLOGIES)
        if bad.any():
            row = table[bad].iloc[0]
            raise InputError(
                f"{origin.origin} line {row['_line']} field ontology: {row['ontology']!r} is not one of BP, MF, CC"
            )
        annotations = table.assign(
            entrez_id=_int_column(table, "entrez_id", origin.origin), file_sha256=origin.file_sha256
        )
        changes = {
            "go_annotations": self._upsert(
                "go_annotations", annotations[["entrez_id", "go_id", "evidence", "ontology", "file_sha256"]]
            )
        }
        if "symbol" in table:
            genes = self._genes_frame(table, origin.origin, origin, symbol="symbol").drop_duplicates("entrez_id")
            changes["genes"] = self._upsert("genes", genes, update=False)
        return changes

    def _load_go_terms(self, table: pd.DataFrame, origin: Origin, report: ImportReport) -> dict:
        terms = table.assign(definition=table.get("definition"), file_sha256=origin.file_sha256)
        return {"go_terms": self._upsert("go_terms", terms[["go_id", "term", "ontology", "definition", "file_sha256"]])}

    def _load_go_parents(self, table: pd.DataFrame, origin: Origin, report: ImportReport) -> dict:
        parents = table.assign(ontology=table.get("ontology"), file_sha256=origin.file_sha256)
        return {
            "go_parents": self._upsert(
                "go_parents", parents[["child", "parent", "relationship_type", "ontology", "file_sha256"]]
            )
        }

    def _load_mygene_jsonl(self, table: pd.DataFrame, origin: Origin, report: ImportReport) -> dict:
        return self.apply_mygene_records(list(table["record"]), origin, report)

    def apply_mygene_records(self, records: list[dict], origin: Origin, report: ImportReport) -> dict:
        """Write mygene gene records (``/v3/gene`` shape) to genes, aliases, texts and GO tables.

        Called inside the caller's transaction (file import or one pull batch).
        """
        tables, unresolved = records_to_tables(records)
        changes = {
            "genes": self._upsert("genes", tables["genes"].assign(file_sha256=origin.file_sha256)),
            "aliases": self._upsert(
                "aliases",
                pd.concat(
                    [_alias_rows(tables["aliases"], "alias", origin), _alias_rows(tables["ensembl"], "ensembl", origin)]
                ),
                update=False,
            ),
            "texts": self._upsert(
                "texts",
                _text_rows(
                    tables["summaries"]["entrez_id"],
                    "ncbi_summary",
                    tables["summaries"]["text"],
                    tables["summaries"]["entrez_id"].astype(str),
                    origin,
                ),
            ),
            "go_terms": self._upsert(
                "go_terms", tables["go_terms"].assign(file_sha256=origin.file_sha256), update=False
            ),
            "go_annotations": self._upsert(
                "go_annotations", tables["go_annotations"].assign(file_sha256=origin.file_sha256)
            ),
        }
        changes["unresolved"] = self._record_unresolved(unresolved, origin, report)
        return changes

    def refresh_go_texts(self) -> None:
        """Rebuild the ``go_terms`` texts from the GO tables (inside the caller's transaction)."""
        frame = self.con.execute(go_text_sql()).df()
        origin = Origin(None, "go_annotations + go_terms", GO_TEXT_VERSION, utc_now())
        self._upsert(
            "texts", _text_rows(frame["entrez_id"], "go_terms", frame["text"], frame["entrez_id"].astype(str), origin)
        )

    # ------------------------------------------------------------------ reading
    def documents(self, template: str = DEFAULT_TEMPLATE, entrez_ids: Iterable[int] | None = None) -> pd.DataFrame:
        """One document per gene built by a template.

        Parameters
        ----------
        template
            A key of :data:`gene_corpus.documents.TEMPLATES`.
        entrez_ids
            Restrict to these genes (``None``: every gene with a document).

        Returns
        -------
        ``(n_genes, 8)`` frame ``entrez_id`` (int64), ``symbol``, ``name``, ``template``, ``kind``, ``parts``
        (sources used, ``+``-joined), ``text``, ``text_sha256``; sorted by ``entrez_id``.
        """
        if template not in TEMPLATES:
            raise InputError(f"unknown template {template!r}; expected one of {', '.join(TEMPLATES)}")
        sql = documents_sql(template)
        if entrez_ids is None:
            frame = self.con.execute(f"SELECT * FROM ({sql}) ORDER BY entrez_id").df()
        else:
            ids = pd.DataFrame({"entrez_id": pd.Series(list(entrez_ids), dtype="int64")})
            self.con.register("_ids", ids)
            try:
                frame = self.con.execute(
                    f"SELECT d.* FROM ({sql}) d SEMI JOIN _ids USING (entrez_id) ORDER BY entrez_id"
                ).df()
            finally:
                self.con.unregister("_ids")
        return frame.astype({"entrez_id": "int64"})

    def resolve(self, queries: Iterable[str]) -> list[Resolution]:
        """Resolve symbols / aliases / previous symbols / Ensembl ids / Entrez ids (see :mod:`gene_corpus.resolve`).

        Returns
        -------
        One :class:`Resolution` per query, in order; unknown queries carry close symbols in ``candidates``.
        """
        if self._suggester is None:
            self._suggester = SymbolSuggester(
                [r[0] for r in self.con.execute("SELECT symbol FROM genes WHERE symbol IS NOT NULL").fetchall()]
            )
        return resolve_queries(self.con, names_of(queries, "queries", as_text=True), self._suggester)

    def resolve_one(self, query: str) -> Resolution:
        """Resolve one identifier to exactly one gene.

        Raises
        ------
        InputError
            Unknown (with "did you mean …") or ambiguous (with the candidates).
        """
        r = self.resolve([query])[0]
        if r.how == "unknown":
            hint = (
                f"; did you mean {', '.join(r.candidates)}?"
                if r.candidates
                else "; check the spelling or import gene_ids files"
            )
            raise InputError(f"gene {query!r} is not a known symbol, alias, Ensembl or Entrez id in {self.path}{hint}")
        if r.how == "ambiguous":
            raise InputError(
                f"gene {query!r} is ambiguous: it may be {', '.join(r.candidates)}; "
                "pass the Entrez id or current symbol"
            )
        return r

    def gene_info(self, entrez_ids: Iterable[int] | None = None) -> pd.DataFrame:
        """``entrez_id, symbol, name, gene_type, chromosome, ensembl_ids, uniprot_ids`` of genes (all if ``None``)."""
        sql = "SELECT entrez_id, symbol, name, gene_type, chromosome, ensembl_ids, uniprot_ids FROM genes"
        if entrez_ids is None:
            return self.con.execute(sql + " ORDER BY entrez_id").df()
        ids = pd.DataFrame({"entrez_id": pd.Series(list(entrez_ids), dtype="int64")})
        self.con.register("_ids", ids)
        try:
            return self.con.execute(
                f"SELECT g.* FROM ({sql}) g SEMI JOIN _ids USING (entrez_id) ORDER BY entrez_id"
            ).df()
        finally:
            self.con.unregister("_ids")

    def go_annotations(self, ontology: str = "BP") -> pd.DataFrame:
        """Distinct ``(entrez_id, go_id)`` annotations of one ontology (``BP``, ``MF`` or ``CC``), ND excluded."""
        if ontology not in ONTOLOGIES:
            raise InputError(f"unknown GO ontology {ontology!r}; expected one of {', '.join(ONTOLOGIES)}")
        return self.con.execute(
            "SELECT DISTINCT entrez_id, go_id FROM go_annotations WHERE ontology = ? AND evidence <> 'ND' "
            "ORDER BY entrez_id, go_id",
            [ontology],
        ).df()

    def stats(self) -> dict:
        """Counts for ``corpus stats --json``: genes, documents, texts by source, documents by kind, sizes."""
        q = lambda sql: self.con.execute(sql).fetchall()  # noqa: E731
        texts = {s: 0 for s in TEXT_SOURCES} | dict(q("SELECT source, count(*) FROM texts GROUP BY source"))
        chars = {s: 0 for s in TEXT_SOURCES} | {
            k: int(v) for k, v in q("SELECT source, sum(length(text)) FROM texts GROUP BY source")
        }
        kinds = dict(q("SELECT kind, count(*) FROM documents GROUP BY kind ORDER BY kind"))
        return {
            "genes": q("SELECT count(*) FROM genes")[0][0],
            "documents": sum(kinds.values()),
            "texts_by_source": texts,
            "documents_by_kind": kinds,
            "text_chars_by_source": chars,
            "aliases_by_kind": dict(q("SELECT kind, count(*) FROM aliases GROUP BY kind ORDER BY kind")),
            "go_annotations": q("SELECT count(*) FROM go_annotations")[0][0],
            "go_terms": q("SELECT count(*) FROM go_terms")[0][0],
            "unresolved": q("SELECT count(*) FROM unresolved")[0][0],
            "files": [
                dict(zip(("name", "format", "sha256", "rows_read", "rows_added"), r))
                for r in q("SELECT name, format, sha256, rows_read, rows_added FROM files ORDER BY imported_at, name")
            ],
            "database_bytes": self.path.stat().st_size if self.path.is_file() else 0,
        }

    def show(self, gene: str, template: str = DEFAULT_TEMPLATE) -> dict:
        """One gene: resolution, identifiers, its document and every text with provenance (``corpus show --json``)."""
        r = self.resolve_one(gene)
        info = self.gene_info([r.entrez_id]).iloc[0]
        doc = self.documents(template, [r.entrez_id])
        texts = self.con.execute(
            "SELECT source, text, sha256, source_key, origin, source_version, "
            "CAST(retrieved_at AS VARCHAR) AS retrieved_at "
            "FROM texts WHERE entrez_id = ? ORDER BY source",
            [r.entrez_id],
        ).df()
        aliases = self.con.execute(
            "SELECT kind, alias FROM aliases WHERE entrez_id = ? ORDER BY kind, alias", [r.entrez_id]
        ).fetchall()
        return {
            "query": gene,
            "entrez_id": r.entrez_id,
            "symbol": r.symbol,
            "how": r.how,
            "name": info["name"],
            "gene_type": info["gene_type"],
            "chromosome": info["chromosome"],
            "ensembl_ids": list(info["ensembl_ids"] if info["ensembl_ids"] is not None else []),
            "uniprot_ids": list(info["uniprot_ids"] if info["uniprot_ids"] is not None else []),
            "aliases": {kind: [a for k, a in aliases if k == kind] for kind in sorted({k for k, _ in aliases})},
            "document": None
            if doc.empty
            else {c: doc.iloc[0][c] for c in ("template", "kind", "parts", "text", "text_sha256")},
            "texts": texts.to_dict("records"),
        }
