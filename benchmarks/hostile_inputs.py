"""Small inputs for hostile runs (``python -m benchmarks.hostile`` and the tests that try bad input): a tiny corpus,
a tiny embedding file and a tiny single-cell screen, written in a folder in well under a second.

The screen is synthetic but shaped like a real one: a control group and perturbations spelled ``A+ctrl`` / ``A+B``,
log-normalised values, readout genes in ``var_names``; the corpus knows every perturbed gene (``MAP3K21`` also
under its old symbol ``KIAA1804``), and the embedding file gives each a vector.

>>> paths = tiny_inputs(tmp_path)  # doctest: +SKIP
>>> sorted(paths)                  # doctest: +SKIP
['corpus_files', 'db', 'embeddings', 'screen']
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

#: Perturbed genes of the tiny screen: symbol → Entrez id (real ids, so the corpus looks like a real one).
GENES = {
    "KLF1": 10661,
    "CEBPA": 1050,
    "SPI1": 6688,
    "GATA1": 2623,
    "TP53": 7157,
    "JUN": 3725,
    "ETS2": 2114,
    "CBL": 867,
    "FOXA1": 3169,
    "MAP3K21": 84451,
}
#: Combinations of the tiny screen (beside one single per gene).
COMBOS = ("CEBPA+KLF1", "GATA1+SPI1", "JUN+TP53", "CBL+ETS2", "FOXA1+KLF1", "MAP3K21+SPI1")
#: Name of the embedding set the tiny corpus holds.
SET = "tiny"
N_READOUT = 40
CELLS = 12
CONTROL_CELLS = 60
DIM = 16


def _write_tsv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def corpus_files(folder: Path) -> list[Path]:
    """A gene-info table and RefSeq-style summaries of :data:`GENES` (``KIAA1804`` an alias of ``MAP3K21``)."""
    folder.mkdir(parents=True, exist_ok=True)
    info = _write_tsv(
        folder / "gene_info.tsv",
        ["entrez_id", "symbol", "gene_name", "gene_type", "aliases", "ensembl_ids", "uniprot_ids"],
        [
            [e, s, f"{s} gene", "protein-coding", "KIAA1804" if s == "MAP3K21" else "", f"ENSG{e:011d}", ""]
            for s, e in GENES.items()
        ],
    )
    summaries = _write_tsv(
        folder / "summaries.tsv",
        ["entrez_id", "symbol", "gene_name", "gene_type", "refseq_summary"],
        [
            [e, s, f"{s} gene", "protein-coding", f"{s} is a gene studied in blood cells ({e})."]
            for s, e in GENES.items()
        ],
    )
    return [info, summaries]


def embedding_file(path: Path, *, seed: int = 0) -> Path:
    """A Scouter-style embedding CSV (index = symbol, columns ``0..DIM-1``) with a vector per gene of :data:`GENES`."""
    rng = np.random.RandomState(seed)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["", *range(DIM)])
        for symbol in GENES:
            writer.writerow([symbol, *np.round(rng.normal(size=DIM), 6)])
    return path


def zeroed_copy(src: Path, dst: Path, length: int, *, start: int | None = None) -> Path:
    """A copy of ``src`` with ``length`` bytes zeroed from ``start`` (default: the body of its first HDF5 global heap
    collection, where variable-length strings such as obs_names live; the HDF5 library loops for ever reading it)."""
    data = bytearray(src.read_bytes())
    if start is None:
        start = data.index(b"GCOL") + 16
    data[start : start + length] = bytes(min(length, len(data) - start))
    dst.write_bytes(bytes(data))
    return dst


def screen_adata(*, seed: int = 0):
    """A tiny single-cell screen: ``ctrl`` cells, one single per gene and :data:`COMBOS`, log-normalised.

    Returns
    -------
    AnnData ``(CONTROL_CELLS + CELLS * (len(GENES) + len(COMBOS)), N_READOUT)``, condition in ``obs['condition']``.
    """
    import anndata as ad
    import pandas as pd

    rng = np.random.RandomState(seed)
    effect = {g: rng.normal(scale=0.6, size=N_READOUT) for g in GENES}
    base = rng.uniform(0.5, 2.0, size=N_READOUT)
    conditions = ["ctrl"] * CONTROL_CELLS
    rows = [base + rng.normal(scale=0.2, size=(CONTROL_CELLS, N_READOUT))]
    for condition in [f"{g}+ctrl" for g in GENES] + list(COMBOS):
        shift = sum(effect[g] for g in condition.split("+") if g != "ctrl")
        rows.append(base + shift + rng.normal(scale=0.2, size=(CELLS, N_READOUT)))
        conditions += [condition] * CELLS
    X = np.clip(np.concatenate(rows), 0, None).astype(np.float32)
    obs = pd.DataFrame({"condition": conditions}, index=[f"cell{i}" for i in range(len(conditions))])
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"R{i}" for i in range(N_READOUT)]))


def tiny_data(paths: dict[str, Path]):
    """``(data, embeddings)``: the tiny screen read and resolved onto the set :data:`SET` of ``paths["db"]`` (what
    training takes; ``paths`` from :func:`tiny_inputs`)."""
    from scouter_local.data.link import load_embeddings, prepare_data
    from scouter_local.data.options import DataOptions

    embeddings = load_embeddings(paths["db"], SET)
    return prepare_data(screen_adata(), DataOptions(), paths["db"], embeddings), embeddings


def tiny_inputs(folder: str | Path) -> dict[str, Path]:
    """Write a tiny corpus database with the embedding set :data:`SET`, and a tiny screen, into ``folder``.

    Returns
    -------
    ``{"db": corpus database, "screen": h5ad, "embeddings": CSV imported as the set, "corpus_files": folder of the
    corpus's source files}``.
    """
    from gene_corpus import Corpus
    from scouter_local.embedding.exchange import import_embeddings

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sources = folder / "corpus_files"
    db = folder / "corpus.duckdb"
    with Corpus.open(db) as corpus:
        corpus.import_files(corpus_files(sources))
    embeddings = embedding_file(folder / "embeddings.csv")
    import_embeddings(db, SET, embeddings)
    screen = folder / "screen.h5ad"
    screen_adata().write_h5ad(screen)
    return {"db": db, "screen": screen, "embeddings": embeddings, "corpus_files": sources}
