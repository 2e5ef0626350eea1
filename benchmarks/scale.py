"""Scale benchmark: peak RSS and cells/s of loading, DE genes and one training epoch as a screen grows.

A synthetic screen in the real (Norman/GEARS) layout is generated chunk by chunk straight into an h5ad file,
never dense and never whole in memory: ``obs['condition']`` with ``control``, singles ``A`` and doubles ``A+B``,
``var_names`` gene symbols, sparse CSR log1p values (about ``--density`` of the entries nonzero), and a real
effect of every perturbation on 20 genes, so DE genes are meaningful. Each stage then runs in its own process
(its peak RSS is its own):

``scan``
    backed read (``anndata.read_h5ad(backed='r')``) and one pass over the rows in chunks computing every
    condition's mean: the cost a streaming loader has (bounded memory).
``load``
    :func:`scouter_local.data.load_perturbation_data`: the project's loader, which also computes the DE genes.
``de``
    :func:`scouter_local.data.compute_de_genes` alone (timed after a load; its RSS includes the load).
``epoch``
    load + one epoch of :class:`scouter_local.model.ScouterPredictor` on every perturbed cell (random 384-d
    gene embeddings; the embedding model is not what is measured).

A stage whose dense matrix (cells × genes × 4 bytes) exceeds ``--max-dense-gb`` is not run and is reported as
such: the project's loader densifies the whole matrix today. Usage::

    python -m benchmarks.scale --cells 200000,1000000 --genes 5000 --out /tmp/scale
    python -m benchmarks.scale --cells 20000,60000 --genes 5000 --out /tmp/scale   # what fits a shared laptop
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STAGES = ("scan", "load", "de", "epoch")
N_SINGLES, N_DOUBLES, CONTROL_SHARE = 100, 50, 0.1
CHUNK = 10_000


# ------------------------------------------------------------------------------------------------ the screen
def conditions_of(n_singles: int = N_SINGLES, n_doubles: int = N_DOUBLES, seed: int = 0) -> list[str]:
    """``control``, ``n_singles`` genes ``PG001``… and ``n_doubles`` pairs of them (``A+B``, sorted)."""
    rng = np.random.default_rng(seed)
    genes = [f"PG{i:03d}" for i in range(n_singles)]
    pairs = {tuple(sorted(rng.choice(genes, 2, replace=False))) for _ in range(n_doubles * 2)}
    return ["control", *genes, *["+".join(p) for p in sorted(pairs)[:n_doubles]]]


def generate(path: Path, n_cells: int, n_genes: int, *, density: float = 0.1, seed: int = 0) -> Path:
    """Write a synthetic screen of ``n_cells`` × ``n_genes`` to ``path`` in chunks of :data:`CHUNK` rows.

    Returns
    -------
    ``path``: h5ad with ``X`` CSR float32 ``(n_cells, n_genes)``, ``obs['condition']`` (categorical),
    ``obs['dataset']``, ``var_names`` ``G00000``….
    """
    import anndata as ad
    import h5py
    import pandas as pd
    import scipy.sparse as sp
    from anndata.io import sparse_dataset, write_elem

    rng = np.random.default_rng(seed)
    conds = conditions_of(seed=seed)
    share = np.r_[CONTROL_SHARE, np.full(len(conds) - 1, (1 - CONTROL_SHARE) / (len(conds) - 1))]
    labels = rng.choice(len(conds), n_cells, p=share)
    effects = np.zeros((len(conds), n_genes), np.float32)  # each perturbation moves 20 genes up or down
    for i in range(1, len(conds)):
        effects[i, rng.choice(n_genes, 20, replace=False)] = rng.choice([-1.0, 1.0], 20) * rng.uniform(0.5, 2.0, 20)
    obs = pd.DataFrame({"condition": pd.Categorical.from_codes(labels, conds), "dataset": "synthetic"},
                       index=[f"c{i}" for i in range(n_cells)])
    var = pd.DataFrame(index=[f"G{i:05d}" for i in range(n_genes)])
    ad.AnnData(obs=obs, var=var).write_h5ad(path)
    rate = rng.gamma(2.0, 1.0, n_genes).astype(np.float32)  # per-gene expression level
    with h5py.File(path, "a") as f:
        for start in range(0, n_cells, CHUNK):
            lab = labels[start:start + CHUNK]
            expressed = rng.random((len(lab), n_genes), dtype=np.float32) < density
            counts = rng.poisson(np.maximum(rate + effects[lab], 0.05)[expressed]).astype(np.float32)
            mask = expressed.copy()
            mask[expressed] = counts > 0
            chunk = sp.csr_matrix((np.log1p(counts[counts > 0]), np.nonzero(mask)[1],
                                   np.r_[0, np.cumsum(mask.sum(axis=1))]), shape=(len(lab), n_genes))
            if start == 0:
                write_elem(f, "X", chunk)
            else:
                sparse_dataset(f["X"]).append(chunk)
    return path


# ------------------------------------------------------------------------------------------------ stages
@dataclass
class _Found:
    """Exact resolution of a synthetic gene symbol (the corpus is not what is measured)."""

    query: str
    entrez_id: int | None = None
    symbol: str | None = None
    how: str = "exact"
    candidates: tuple = ()


def _embeddings(genes: list[str], dim: int = 384):
    from scouter_local.embedding_set import EmbeddingSet

    vectors = np.random.default_rng(1).normal(size=(len(genes), dim)).astype(np.float32)
    return EmbeddingSet(name="random", fingerprint="random", symbols=genes, entrez_ids=np.full(len(genes), -1),
                        vectors=vectors)


def _options():
    from scouter_local.data import DataOptions

    return DataOptions(condition_key="condition", control="control", single_format="bare")


def run_stage(stage: str, path: Path) -> dict:
    """Run one stage on ``path`` in this process; return seconds, cells/s and peak RSS (GiB)."""
    import anndata as ad

    began = time.perf_counter()
    out: dict = {"stage": stage}
    if stage == "scan":
        adata = ad.read_h5ad(path, backed="r")
        codes = adata.obs["condition"].cat.codes.to_numpy()
        sums = np.zeros((codes.max() + 1, adata.n_vars))
        for start in range(0, adata.n_obs, CHUNK):
            block = adata.X[start:start + CHUNK]
            for code in np.unique(codes[start:start + CHUNK]):
                sums[code] += np.asarray(block[codes[start:start + CHUNK] == code].sum(axis=0)).ravel()
        n = adata.n_obs
    else:
        from scouter_local.data import compute_de_genes, load_perturbation_data, resolve_genes

        data = load_perturbation_data(path, _options())
        n = len(data.conditions)
        out["load_s"] = round(time.perf_counter() - began, 2)
        if stage == "de":
            t0 = time.perf_counter()
            compute_de_genes(data.X, data.conditions, data.genes, is_delta=False)
            out["de_s"] = round(time.perf_counter() - t0, 2)
            began = t0
        elif stage == "epoch":
            from scouter_local.data import Split
            from scouter_local.model import train_model

            genes = sorted({g for c in data.perturbations for g in c.split("+") if g != "ctrl"})
            emb = _embeddings(genes)
            data = resolve_genes(data, emb, lambda qs: [_Found(q, symbol=q) for q in qs])
            t0 = time.perf_counter()
            model = train_model(data, emb, Split(train=data.perturbations, val=[], test=[]), method="scouter",
                                epochs=1, seed=1)
            out["epoch_s"] = round(model.history_[0]["seconds"], 2)
            out["fit_s"] = round(time.perf_counter() - t0, 2)
            began = t0
    seconds = time.perf_counter() - began
    out |= {"cells": int(n), "seconds": round(seconds, 2), "cells_per_s": round(n / seconds),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}
    return out


def _child(stage: str, path: Path, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.scale", "--stage", stage, "--path", str(path)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"stage": stage, "error": f"over {timeout:.0f} s"}
    if done.returncode != 0:
        return {"stage": stage, "error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="200000,1000000", help="Comma-separated screen sizes (cells).")
    parser.add_argument("--genes", type=int, default=5000)
    parser.add_argument("--density", type=float, default=0.1, help="Share of nonzero entries.")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--max-dense-gb", type=float, default=8.0,
                        help="Skip the project's (densifying) stages above this dense size.")
    parser.add_argument("--timeout", type=float, default=1800, help="Seconds per stage.")
    parser.add_argument("--out", type=Path, default=Path("bench_scale"))
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage:  # child process: one stage, one JSON line
        print(json.dumps(run_stage(args.stage, args.path)))
        return

    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n_cells in (int(c) for c in args.cells.split(",")):
        path = args.out / f"screen_{n_cells}x{args.genes}.h5ad"
        if not path.exists():
            t0 = time.perf_counter()
            generate(path.with_suffix(".tmp.h5ad"), n_cells, args.genes, density=args.density).rename(path)
            print(f"generated {path} ({path.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr)
        dense_gb = n_cells * args.genes * 4 / 1e9
        for stage in args.stages.split(","):
            if stage != "scan" and dense_gb > args.max_dense_gb:
                row = {"stage": stage, "error": f"skipped: the loader densifies {dense_gb:.1f} GB > --max-dense-gb"}
            else:
                row = _child(stage, path, args.timeout)
            rows.append({"n_cells": n_cells, "n_genes": args.genes, "file_gib": round(path.stat().st_size / 2**30, 2),
                         **row})
            print(json.dumps(rows[-1]), file=sys.stderr)
    (args.out / "scale.json").write_text(json.dumps(rows, indent=2))
    header = f"{'cells':>9} {'stage':<6} {'seconds':>8} {'cells/s':>9} {'peak RSS GiB':>13}  note"
    print(header)
    print("-" * len(header))
    for r in rows:
        note = r.get("error") or ", ".join(f"{k} {r[k]}" for k in ("load_s", "de_s", "epoch_s", "fit_s") if k in r)
        print(f"{r['n_cells']:>9} {r['stage']:<6} {r.get('seconds', '-'):>8} {r.get('cells_per_s', '-'):>9} "
              f"{r.get('peak_rss_gib', '-'):>13}  {note}")


if __name__ == "__main__":
    main()
