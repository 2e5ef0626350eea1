"""DuckDB schema of the gene corpus: tables, their keys and the text sources.

Tables (one row per key; provenance on every row through ``file_sha256`` → ``files``):

- ``files``: one row per imported file or pull batch source (sha256, path, format, rows, imported_at).
- ``genes``: Entrez gene id, current symbol, name, type, chromosome, map location, Ensembl and UniProt ids.
- ``aliases``: alias / previous symbol / Ensembl id → Entrez id, with ``kind`` in :data:`ALIAS_KINDS`.
- ``texts``: one text per (gene, source), ``source`` in :data:`TEXT_SOURCES`, with origin (file path or URL),
  source version, retrieval time and the text's sha256.
- ``go_terms``, ``go_parents``, ``go_annotations``: Gene Ontology terms, their graph and gene annotations.
- ``unresolved``: source identifiers that could not be mapped to an Entrez gene, with the reason.
- ``mygene_queries``: queries already answered by a ``corpus pull`` (what makes a pull resumable).
- view ``documents``: one text per gene built by the default template (see :mod:`gene_corpus.documents`).
"""

from __future__ import annotations

TEXT_SOURCES = ("ncbi_summary", "uniprot_function", "go_terms", "genept", "custom")
ALIAS_KINDS = ("alias", "previous", "ensembl")
SCHEMA_VERSION = 1

DDL = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR, value VARCHAR);
CREATE TABLE IF NOT EXISTS files (
    sha256 VARCHAR, path VARCHAR, name VARCHAR, format VARCHAR, size_bytes BIGINT,
    source_version VARCHAR, retrieved_at TIMESTAMP, imported_at TIMESTAMP,
    rows_read BIGINT, rows_added BIGINT, rows_updated BIGINT
);
CREATE TABLE IF NOT EXISTS genes (
    entrez_id BIGINT, symbol VARCHAR, name VARCHAR, gene_type VARCHAR, chromosome VARCHAR,
    map_location VARCHAR, ensembl_ids VARCHAR[], uniprot_ids VARCHAR[], file_sha256 VARCHAR
);
CREATE TABLE IF NOT EXISTS aliases (
    alias VARCHAR, alias_key VARCHAR, entrez_id BIGINT, kind VARCHAR, file_sha256 VARCHAR
);
CREATE TABLE IF NOT EXISTS texts (
    entrez_id BIGINT, source VARCHAR, text VARCHAR, sha256 VARCHAR, source_key VARCHAR,
    origin VARCHAR, source_version VARCHAR, retrieved_at TIMESTAMP, file_sha256 VARCHAR
);
CREATE TABLE IF NOT EXISTS go_terms (
    go_id VARCHAR, term VARCHAR, ontology VARCHAR, definition VARCHAR, file_sha256 VARCHAR
);
CREATE TABLE IF NOT EXISTS go_parents (
    child VARCHAR, parent VARCHAR, relationship_type VARCHAR, ontology VARCHAR, file_sha256 VARCHAR
);
CREATE TABLE IF NOT EXISTS go_annotations (
    entrez_id BIGINT, go_id VARCHAR, evidence VARCHAR, ontology VARCHAR, file_sha256 VARCHAR
);
CREATE TABLE IF NOT EXISTS unresolved (
    file_sha256 VARCHAR, source_key VARCHAR, reason VARCHAR
);
CREATE TABLE IF NOT EXISTS mygene_queries (
    query VARCHAR, url VARCHAR, entrez_ids BIGINT[], status VARCHAR, retrieved_at TIMESTAMP
);
"""

#: Key columns of each upserted table; the other columns (except provenance) are the compared values.
KEYS: dict[str, tuple[str, ...]] = {
    "genes": ("entrez_id",),
    "aliases": ("alias", "entrez_id", "kind"),
    "texts": ("entrez_id", "source"),
    "go_terms": ("go_id",),
    "go_parents": ("child", "parent", "relationship_type"),
    "go_annotations": ("entrez_id", "go_id", "evidence"),
    "unresolved": ("file_sha256", "source_key"),
}
#: Columns that record where a row came from; a change only there is not a change of the row.
PROVENANCE = ("file_sha256", "origin", "source_version", "retrieved_at", "source_key")
