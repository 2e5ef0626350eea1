"""Gene text corpus in DuckDB: NCBI/UniProt/GO texts with provenance, and gene symbol resolution."""

from gene_corpus.errors import InputError

__all__ = ["InputError"]
