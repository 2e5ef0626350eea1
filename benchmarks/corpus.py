"""Gene corpus benchmark: full import of the real files, re-import, documents and resolver throughput.

Imports every gene_text, gene_ids and go file of the shared data into a fresh DuckDB file (one transaction),
then prints per-file rows, seconds and rows/s, the total, the database size, the time of a second import (which
must change nothing), of building all default documents and of resolving the 1,915 GenePT symbols.

Usage::

    python -m benchmarks.corpus [--data-dir ../shared/data] [--keep DB]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks._common import DATA_DIR
from gene_corpus import Corpus
from scouter_local.datasets import CORPUS_FOLDERS

GENEPT = "gene_text/genept_ncbi_uniprot_perturbed_genes.json"


def run(data_dir: Path, db: Path) -> dict:
    """Run the benchmark into ``db`` (must not exist); returns the measured figures."""
    files = sorted(f for folder in CORPUS_FOLDERS for f in (data_dir / folder).iterdir() if f.is_file())
    start = time.perf_counter()
    with Corpus.open(db) as corpus:
        reports = corpus.import_files(files)
    total = time.perf_counter() - start
    size = db.stat().st_size
    start = time.perf_counter()
    with Corpus.open(db) as corpus:
        again = corpus.import_files(files)
    reimport = time.perf_counter() - start
    with Corpus.open(db, read_only=True) as corpus:
        start = time.perf_counter()
        docs = corpus.documents()
        documents_s = time.perf_counter() - start
        keys = list(json.loads((data_dir / GENEPT).read_text()))
        start = time.perf_counter()
        resolved = corpus.resolve(keys)
        resolve_s = time.perf_counter() - start
        stats = corpus.stats()
    return {
        "files": [(Path(r.path).name, r.format, r.rows_read, r.rows_added, r.seconds) for r in reports],
        "total_s": total,
        "rows": sum(r.rows_read for r in reports),
        "db_bytes": size,
        "reimport_s": reimport,
        "reimport_unchanged": all(r.skipped for r in again),
        "documents": len(docs),
        "documents_s": documents_s,
        "documents_by_kind": stats["documents_by_kind"],
        "ncbi_summaries": stats["texts_by_source"]["ncbi_summary"],
        "resolve_n": len(keys),
        "resolve_s": resolve_s,
        "resolved": sum(r.entrez_id is not None for r in resolved),
    }


def main() -> None:
    """Print the benchmark table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument(
        "--keep", type=Path, help="Write the database here (must not exist) instead of a temporary file."
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.keep or Path(tmp) / "corpus.duckdb"
        if db.exists():
            parser.error(f"{db} exists; pass a new path to --keep")
        m = run(args.data_dir, db)
    print(f"{'file':<46} {'format':<17} {'rows':>9} {'added':>9} {'seconds':>8} {'rows/s':>10}")
    for name, fmt, rows, added, seconds in m["files"]:
        print(f"{name:<46} {fmt:<17} {rows:>9,} {added:>9,} {seconds:>8.2f} {rows / seconds:>10,.0f}")
    print(
        f"{'total (one transaction, incl. GO texts)':<46} {'':<17} {m['rows']:>9,} {'':>9} {m['total_s']:>8.2f} "
        f"{m['rows'] / m['total_s']:>10,.0f}"
    )
    print(f"database size: {m['db_bytes'] / 2**20:.1f} MiB")
    print(f"re-import of the same files: {m['reimport_s']:.2f} s, unchanged: {m['reimport_unchanged']}")
    print(
        f"documents: {m['documents']:,} built in {m['documents_s']:.2f} s {m['documents_by_kind']}; "
        f"NCBI summaries: {m['ncbi_summaries']:,}"
    )
    print(
        f"resolver: {m['resolved']}/{m['resolve_n']} GenePT symbols resolved in {m['resolve_s']:.2f} s "
        f"({m['resolve_n'] / m['resolve_s']:,.0f} queries/s)"
    )


if __name__ == "__main__":
    main()
