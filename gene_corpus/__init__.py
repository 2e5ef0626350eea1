"""Gene text corpus in DuckDB: NCBI/UniProt/GO texts with provenance, and gene symbol resolution."""

from gene_corpus.corpus import Corpus, ImportReport
from gene_corpus.documents import DEFAULT_TEMPLATE, TEMPLATES
from gene_corpus.errors import InputError
from gene_corpus.resolve import Resolution

__all__ = ["Corpus", "DEFAULT_TEMPLATE", "ImportReport", "InputError", "Resolution", "TEMPLATES"]
