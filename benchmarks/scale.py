"""Scale benchmark: peak RSS and cells/s of loading, DE genes, training and evaluation as a screen grows.

A synthetic screen in the real (Norman/GEARS) layout is generated chunk by chunk straight into an h5ad file,
never dense and never whole in memory: ``obs['condition']`` with ``control``, singles ``A`` and doubles ``A+B``,
``var_names`` gene symbols, sparse CSR log1p values (about ``--density`` of the entries nonzero), and a real
effect of every perturbation on 20 genes, so DE genes are meaningful. Each stage then runs in its own process
on the file opened backed; its peak RSS is its own (``VmHWM``, :func:`scouter_local.runtime.own_peak_rss_mib`:
``ru_maxrss`` would carry over the parent's memory):

``load``
    :func:`scouter_local.data.read_perturbation_data` with ``backed=True``: one chunked pass over the cells for
    per-condition statistics, then DE genes from them (``de_s`` times the DE step alone).
``evaluate``
    load + a seeded Scouter split + ``gene_delta`` (the default method) fitted on the training conditions +
    the evaluation of the test conditions (``evaluate_predictions``).
``epoch``
    load + one epoch of :class:`scouter_local.predictors.scouter.ScouterPredictor` streamed from the file over every
    perturbed cell (random 384-d gene embeddings; the embedding model is not what is measured). Skipped above
    ``--max-epoch-cells`` (a CPU epoch runs at a few hundred cells/s).

Usage::

    python -m benchmarks.scale --cells 200000,1000000 --genes 5000 --out /tmp/scale
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gene_corpus.files import atomic_path

STAGES = ("load", "evaluate", "epoch")
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
    obs = pd.DataFrame(
        {"condition": pd.Categorical.from_codes(labels, conds), "dataset": "synthetic"},
        index=[f"c{i}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=[f"G{i:05d}" for i in range(n_genes)])
    ad.AnnData(obs=obs, var=var).write_h5ad(path)
    rate = rng.gamma(2.0, 1.0, n_genes).astype(np.float32)  # per-gene expression level
    with h5py.File(path, "a") as f:
        for start in range(0, n_cells, CHUNK):
            lab = labels[start : start + CHUNK]
            expressed = rng.random((len(lab), n_genes), dtype=np.float32) < density
            counts = rng.poisson(np.maximum(rate + effects[lab], 0.05)[expressed]).astype(np.float32)
            mask = expressed.copy()
            mask[expressed] = counts > 0
            chunk = sp.csr_matrix(
                (np.log1p(counts[counts > 0]), np.nonzero(mask)[1], np.r_[0, np.cumsum(mask.sum(axis=1))]),
                shape=(len(lab), n_genes),
            )
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
    from scouter_local.embedding.sets import EmbeddingSet

    vectors = np.random.default_rng(1).normal(size=(len(genes), dim)).astype(np.float32)
    return EmbeddingSet(
        name="random", fingerprint="random", symbols=genes, entrez_ids=np.full(len(genes), -1), vectors=vectors
    )


def _options():
    from scouter_local.data.options import DataOptions

    return DataOptions(condition_key="condition", control="control", single_format="bare")


def run_stage(stage: str, path: Path) -> dict:
    """Run one stage on ``path`` (opened backed) in this process; return seconds, cells/s and peak RSS (GiB)."""
    from scouter_local.data.de import compute_de_genes
    from scouter_local.data.link import resolve_genes
    from scouter_local.data.read import read_perturbation_data
    from scouter_local.data.splits import make_split
    from scouter_local.runtime import own_peak_rss_mib

    began = time.perf_counter()
    data = read_perturbation_data(path, _options(), backed=True)
    out: dict = {"stage": stage, "cells": int(data.n_obs), "load_s": round(time.perf_counter() - began, 2)}
    t0 = time.perf_counter()
    compute_de_genes(data.stats, data.genes, is_delta=False)
    out["de_s"] = round(time.perf_counter() - t0, 2)
    if stage != "load":
        genes = sorted({g for c in data.perturbations for g in c.split("+") if g != "ctrl"})
        emb = _embeddings(genes)
        data = resolve_genes(data, emb, lambda qs: [_Found(q, symbol=q) for q in qs])
        t0 = time.perf_counter()
        if stage == "evaluate":
            from scouter_local.evaluation.scoring import evaluate_predictions
            from scouter_local.predictors.training import train

            split = make_split(data, "scouter", seed=1)
            model = train(data, emb, split=split, method="gene_delta")
            result = evaluate_predictions(
                data, dict(zip(split.test, model.predict(split.test))), split.train, method="gene_delta"
            )
            out["fit_evaluate_s"] = round(time.perf_counter() - t0, 2)
            out["test_normmse"] = round(result.mean("normmse"), 3)
        else:
            from scouter_local.data.splits import Split
            from scouter_local.predictors.training import train

            model = train(
                data, emb, split=Split(train=data.perturbations, val=[], test=[]), method="scouter", epochs=1, seed=1
            )
            out["epoch_s"] = round(model.history_[0]["seconds"], 2)
            out["epoch_cells_per_s"] = round(int((data.conditions != "ctrl").sum()) / model.history_[0]["seconds"])
    seconds = time.perf_counter() - began
    out |= {
        "seconds": round(seconds, 2),
        "cells_per_s": round(out["cells"] / seconds),
        "peak_rss_gib": round(own_peak_rss_mib() / 1024, 2),
    }
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
    parser.add_argument(
        "--max-epoch-cells", type=int, default=300_000, help="Skip the training-epoch stage above this many cells."
    )
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
            with atomic_path(path) as tmp:
                generate(tmp, n_cells, args.genes, density=args.density)
            print(
                f"generated {path} ({path.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - t0:.0f} s",
                file=sys.stderr,
            )
        for stage in args.stages.split(","):
            if stage == "epoch" and n_cells > args.max_epoch_cells:
                row = {"stage": stage, "error": f"skipped: more than --max-epoch-cells {args.max_epoch_cells}"}
            else:
                row = _child(stage, path, args.timeout)
            rows.append(
                {"n_cells": n_cells, "n_genes": args.genes, "file_gib": round(path.stat().st_size / 2**30, 2), **row}
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
    (args.out / "scale.json").write_text(json.dumps(rows, indent=2))
    header = f"{'cells':>9} {'stage':<6} {'seconds':>8} {'cells/s':>9} {'peak RSS GiB':>13}  note"
    print(header)
    print("-" * len(header))
    for r in rows:
        note = r.get("error") or ", ".join(
            f"{k} {r[k]}"
            for k in ("load_s", "de_s", "fit_evaluate_s", "test_normmse", "epoch_s", "epoch_cells_per_s")
            if k in r
        )
        print(
            f"{r['n_cells']:>9} {r['stage']:<6} {r.get('seconds', '-'):>8} {r.get('cells_per_s', '-'):>9} "
            f"{r.get('peak_rss_gib', '-'):>13}  {note}"
        )


if __name__ == "__main__":
    main()
