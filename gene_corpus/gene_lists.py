"""Gene lists: read from a file, resolved as a whole through the corpus, bad entries reported once.

A list with some unknown or ambiguous genes is used without them: one warning names a few (with candidates),
counts the rest and says how to list them all; only a list with no usable gene is an error.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from gene_corpus.checks import names_of
from gene_corpus.errors import InputError

if TYPE_CHECKING:
    from gene_corpus.corpus import Corpus
    from gene_corpus.resolve import Resolution

#: Left-out entries named in a warning (the rest are counted).
SHOWN_LEFT_OUT = 5


def name_some(notes: list[str], n: int = SHOWN_LEFT_OUT) -> str:
    """The first ``n`` notes joined by ``; `` and the rest counted: ``"A (unknown); B (ambiguous); and 3 more"``."""
    more = len(notes) - n
    return "; ".join(notes[:n]) + (f"; and {more} more" if more > 0 else "")


def read_gene_list(path: str | os.PathLike) -> list[str]:
    """Genes from a file: one per line (or comma-separated), ``#`` starts a comment, blank lines skipped."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"gene list {path} does not exist")
    data = path.read_bytes()
    try:
        if b"\0" in data:
            raise UnicodeDecodeError("utf-8", data, data.index(b"\0"), data.index(b"\0") + 1, "NUL byte")
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"gene list {path} is not a UTF-8 text file (byte {exc.start}: {exc.reason}); write one gene symbol "
            "or Entrez id per line"
        ) from None
    genes = [g.strip() for line in text.splitlines() for g in line.split("#")[0].split(",") if g.strip()]
    if not genes:
        raise InputError(f"gene list {path} names no genes; write one symbol or Entrez id per line")
    return genes


def _left_out_note(r: Resolution, reason: str | None) -> str:
    if reason:
        return f"{r.query} ({reason})"
    if r.how == "ambiguous":
        return f"{r.query} (ambiguous: {', '.join(r.candidates)})"
    return f"{r.query} (unknown" + (f"; did you mean {', '.join(r.candidates)}?)" if r.candidates else ")")


def resolve_gene_list(
    corpus: Corpus,
    genes: Iterable[str | int],
    *,
    within: Iterable[int] | None = None,
    within_name: str = "",
    source: str | None = None,
) -> tuple[list[int], list[str]]:
    """Resolve a whole gene list; leave out unknown and ambiguous entries with one warning that names them.

    Parameters
    ----------
    corpus
        The corpus whose resolver is used.
    genes
        Symbols, aliases, previous symbols, Ensembl or Entrez ids.
    within, within_name
        Also leave out genes whose Entrez id is not among ``within`` (e.g. the genes of an embedding set,
        named ``within_name`` in the warning).
    source
        The file the list came from, named in the warning and in its hint (``None``: genes given inline).

    Returns
    -------
    ``(entrez ids, left out)``: the ids of the resolved genes in list order without repeats, and the entries
    left out. One :class:`UserWarning` names the first :data:`SHOWN_LEFT_OUT` left-out entries (with the
    candidates of ambiguous ones and close symbols of unknown ones), counts the rest and says how to list them.

    Raises
    ------
    InputError
        No gene of the list is usable.
    """
    genes = [g.strip() for g in names_of(genes, "genes")]
    keep = None if within is None else {int(e) for e in within}
    ids: list[int] = []
    left_out: list[str] = []
    notes: list[str] = []
    for r in corpus.resolve(genes):
        if r.entrez_id is not None and (keep is None or r.entrez_id in keep):
            ids.append(r.entrez_id)
            continue
        left_out.append(r.query)
        notes.append(_left_out_note(r, None if r.entrez_id is None else f"{r.symbol}, not in set {within_name}"))
    listing = f"scouter-local corpus resolve --db {corpus.path} --unresolved " + (
        f"--genes {source}" if source else "GENE ..."
    )
    if not ids:
        raise InputError(
            f"none of the {len(genes)} genes{f' of {source}' if source else ''} is usable: "
            f"{name_some(notes)}; see `{listing}`"
        )
    if notes:
        warnings.warn(
            f"{len(notes)} of {len(genes)} genes{f' of {source}' if source else ''} left out: "
            f"{name_some(notes)} (the other {len(genes) - len(notes)} are used; list every one left out "
            f"with `{listing}`)",
            stacklevel=3,
        )
    return list(dict.fromkeys(ids)), left_out
