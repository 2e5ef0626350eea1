"""Gene text corpus in DuckDB: NCBI/UniProt/GO texts with provenance, and gene symbol resolution.

The public names are imported on first use, so that ``gene_corpus.errors`` or ``gene_corpus.atomic`` load without
DuckDB and pandas.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "Corpus": "gene_corpus.corpus",
    "ImportReport": "gene_corpus.corpus",
    "DEFAULT_TEMPLATE": "gene_corpus.documents",
    "TEMPLATES": "gene_corpus.documents",
    "InputError": "gene_corpus.errors",
    "Resolution": "gene_corpus.resolve",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'gene_corpus' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
