"""Predictor benchmark on the Norman subset: scouter-local's methods beside scouter-learn on the same splits.

Every (embedding set, method, seed) runs in its own process (fit time and peak RSS are its own), on the same
data, Scouter condition splits (test 0.2, val 0.1) and embeddings. ``scouter-learn`` (optional, for the fidelity
measurement: ``pip install scouter-learn==0.1.10 --no-deps``) is run through :func:`run_scouter_learn` with its
own defaults; its predictions are scored by the same metric code.

Usage::

    python -m benchmarks.predictor --db corpus.duckdb --set minilm [--seeds 1-5] [--out bench_predictor]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import types
from pathlib import Path

import numpy as np

from scouter_local.benchmarking import parse_seeds, run_benchmark
from scouter_local.data import CTRL, DataOptions, PerturbationData, Split
from scouter_local.embedding_set import EmbeddingSet

NORMAN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "perturbseq" / "norman2019_mcfaline2023_subset.h5ad"
NORMAN_OPTIONS = DataOptions(condition_key="condition", control="control", single_format="bare",
                             subset=(("dataset", "norman19"),))
METHODS = ("scouter", "scouter-learn", "no_change", "train_mean", "additive", "ridge", "knn")


def run_scouter_learn(data: PerturbationData, embeddings: EmbeddingSet, split: Split, method: str,
                      config: dict) -> tuple[dict[str, np.ndarray], float, list[str]]:
    """Train scouter-learn 0.1.10 with its defaults on ``split``; return its test predictions (mean of its 300
    sampled control cells), fit seconds and training conditions. torch is seeded (scouter-learn does not)."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp
    import torch

    try:
        import seaborn  # noqa: F401  (scouter imports it at module level; only its barplot uses it)
    except ModuleNotFoundError:
        sys.modules["seaborn"] = types.ModuleType("seaborn")
    from scouter import Scouter, ScouterData

    genes = sorted(data.gene_rows)
    embd = pd.DataFrame(np.vstack([embeddings.vectors[[data.gene_rows[g] for g in genes]],
                                   np.zeros((1, embeddings.dim), dtype=np.float32)]), index=genes + [CTRL])
    keep = np.isin(data.conditions, [CTRL, *split.train, *split.val, *split.test])
    adata = ad.AnnData(X=sp.csr_matrix(data.expression(keep)),
                       obs=pd.DataFrame({"condition": data.conditions[keep].astype(str)},
                                        index=[f"c{i}" for i in range(int(keep.sum()))]),
                       var=pd.DataFrame({"gene_name": data.genes}, index=[f"g{i}" for i in range(data.n_genes)]))
    torch.manual_seed(config["seed"])
    t0 = time.perf_counter()
    pert = ScouterData(adata, embd, key_label="condition", key_var_genename="gene_name")
    pert.setup_ad()
    pert.gene_ranks()
    pert.get_dropout_non_zero_genes()
    pert.split_Train_Val_Test(val_conds=split.val, test_conds=split.test, seed=config["seed"])
    model = Scouter(pert, device="cpu")
    model.model_init()
    model.train()
    seconds = time.perf_counter() - t0
    pred = model.pred(list(split.test))
    return {c: pred[c].mean(axis=0) for c in split.test}, seconds, list(split.train)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(NORMAN))
    parser.add_argument("--db", required=True)
    parser.add_argument("--set", default="minilm", help="embedding set name(s), comma-separated")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="1-5")
    parser.add_argument("--out", default="bench_predictor")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    table = run_benchmark(args.data, NORMAN_OPTIONS, db=args.db, set_names=args.set.split(","),
                          methods=args.methods.split(","), seeds=parse_seeds(args.seeds), out=args.out,
                          runners={"scouter-learn": "benchmarks.predictor:run_scouter_learn"})
    print(table)


if __name__ == "__main__":
    main()
