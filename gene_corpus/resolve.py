"""Gene identifier resolution: symbol / alias / previous symbol / Ensembl id / Entrez id → Entrez + symbol.

Precedence (first level with a match wins): current symbol (``exact``) > Entrez id (``entrez``) > Ensembl gene
id (``ensembl``, version suffix ignored) > HGNC previous symbol (``previous``) > alias (``alias``). Matching is
case-insensitive. A level that maps the query to several genes gives ``ambiguous`` with the candidates, never a
silent pick; the one exception is a current symbol or an Ensembl id shared by several Entrez records, where one
record wins when it alone is preferred by, in turn: protein-coding, not a readthrough, not a provisional ``LOC``
symbol (e.g. ``HBD``, ``TEC``: a protein-coding gene and a phenotype locus; ``ENSG00000166848``: TERF2IP and the
ncRNA LOC105371348; ``ENSG00000115239``: ASB3 and the readthrough GPR75-ASB3; ``ENSG00000164185``: ZNF474 and
LOC100505841). The others are still listed in ``candidates``; a tie (ARL17A / ARL17B) stays ``ambiguous``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field

import duckdb
import pandas as pd

HOW = ("exact", "entrez", "ensembl", "previous", "alias", "ambiguous", "unknown")
_LEVELS = ("exact", "entrez", "ensembl", "previous", "alias")
_ENSEMBL = re.compile(r"^(ENSG\d+)(?:\.\d+)?$", re.IGNORECASE)
_PROVISIONAL = re.compile(r"^LOC\d+$")


@dataclass(frozen=True)
class Resolution:
    """How one query resolved.

    Attributes
    ----------
    query
        The identifier as given.
    entrez_id, symbol
        The gene, or ``None`` when ``how`` is ``ambiguous`` or ``unknown``.
    how
        One of :data:`HOW`.
    candidates
        Symbols of the genes an ambiguous query could mean, other records sharing an exact symbol, or close
        symbols for an unknown query ("did you mean").
    """

    query: str
    entrez_id: int | None
    symbol: str | None
    how: str
    candidates: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready dict with the keys of ``corpus resolve --json``."""
        return asdict(self)


def _matches(con: duckdb.DuckDBPyConnection, keys: pd.DataFrame) -> pd.DataFrame:
    """All (query position, level, gene) matches; ``keys`` has ``pos, key, ensembl_key, entrez_key``."""
    con.register("_queries", keys)
    try:
        return con.execute(
            """
            SELECT q.pos, 'exact' AS level, g.entrez_id, g.symbol, g.gene_type, g.name
            FROM _queries q JOIN genes g ON upper(g.symbol) = q.key
            UNION ALL
            SELECT q.pos, 'entrez', g.entrez_id, g.symbol, g.gene_type, g.name
            FROM _queries q JOIN genes g ON g.entrez_id = q.entrez_key
            UNION ALL
            SELECT q.pos, a.kind, g.entrez_id, g.symbol, g.gene_type, g.name
            FROM _queries q JOIN aliases a ON a.alias_key = coalesce(q.ensembl_key, q.key)
                 JOIN genes g ON g.entrez_id = a.entrez_id
            """
        ).df()
    finally:
        con.unregister("_queries")


def resolve_queries(
    con: duckdb.DuckDBPyConnection, queries: list[str], suggest: "SymbolSuggester | None" = None
) -> list[Resolution]:
    """Resolve identifiers against the ``genes`` and ``aliases`` tables.

    Parameters
    ----------
    con
        Connection to a corpus database.
    queries
        Symbols, aliases, Ensembl gene ids or Entrez ids (``n_queries``).
    suggest
        Gives close symbols for unknown queries; ``None`` leaves their ``candidates`` empty.

    Returns
    -------
    One :class:`Resolution` per query, in order.
    """
    keys = pd.DataFrame({"pos": range(len(queries)), "query": [str(q) for q in queries]})
    keys["key"] = keys["query"].str.strip().str.upper()
    keys["ensembl_key"] = keys["key"].map(lambda k: m.group(1) if (m := _ENSEMBL.match(k)) else None)
    keys["entrez_key"] = pd.array([int(k) if k.isdigit() and len(k) < 18 else None for k in keys["key"]], dtype="Int64")
    found = _matches(con, keys[["pos", "key", "ensembl_key", "entrez_key"]])
    by_pos: dict[int, dict[str, dict[int, tuple[str, tuple[bool, ...]]]]] = {}
    for pos, level, entrez_id, symbol, gene_type, name in found.itertuples(index=False):
        by_pos.setdefault(pos, {}).setdefault(level, {})[int(entrez_id)] = (
            symbol,
            _preference(symbol, gene_type, name),
        )
    return [_pick(query, by_pos.get(pos, {}), suggest) for pos, query in enumerate(keys["query"])]


def _preference(symbol: str, gene_type: str | None, name: str | None) -> tuple[bool, bool, bool]:
    """Higher is preferred among records sharing a symbol or an Ensembl id."""
    return (gene_type == "protein-coding", not str(name or "").endswith("readthrough"), not _PROVISIONAL.match(symbol))


def _pick(
    query: str, levels: dict[str, dict[int, tuple[str, tuple[bool, ...]]]], suggest: "SymbolSuggester | None"
) -> Resolution:
    """The first level with a match wins; ``levels`` maps level → {entrez_id: (symbol, preference)}."""
    for level in _LEVELS:
        hits = sorted(levels.get(level, {}).items())
        if not hits:
            continue
        if len(hits) == 1:
            entrez_id, (symbol, _) = hits[0]
            return Resolution(query, entrez_id, symbol, level, [])
        symbols = [f"{symbol} ({entrez_id})" for entrez_id, (symbol, _) in hits]
        best = max(rank for _, (_, rank) in hits)
        top = [(e, s) for e, (s, rank) in hits if rank == best]
        if level in ("exact", "ensembl") and len(top) == 1 and best[0]:
            return Resolution(query, top[0][0], top[0][1], level, symbols)
        return Resolution(query, None, None, "ambiguous", symbols)
    return Resolution(query, None, None, "unknown", suggest(query) if suggest else [])


class SymbolSuggester:
    """Close current symbols for a misspelt query ("did you mean …").

    Parameters
    ----------
    symbols
        Current gene symbols.
    n
        Suggestions returned at most.
    """

    def __init__(self, symbols: list[str], n: int = 3) -> None:
        self.n = n
        self._by_initial: dict[str, list[str]] = {}
        for symbol in sorted(set(symbols)):
            self._by_initial.setdefault(symbol[:1].upper(), []).append(symbol)

    def __call__(self, query: str) -> list[str]:
        """Up to ``n`` symbols with the same initial letter and a similar spelling."""
        key = query.strip().upper()
        pool = self._by_initial.get(key[:1], [])
        upper = {s.upper(): s for s in pool if abs(len(s) - len(key)) <= 2}
        return [upper[m] for m in difflib.get_close_matches(key, list(upper), n=self.n, cutoff=0.75)]
