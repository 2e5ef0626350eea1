"""Where a gain on unseen Replogle targets comes from: the embedding, or a reweighted prior.

Issue #11 asks the default method for +0.06 Pearson Δ top-20 over ``train_mean`` on the strong unseen targets of
the Replogle K562 file. This benchmark runs, beside ``gene_delta``, ``train_mean`` and ``ridge``, two richer
evidence models for an unseen target, each with its shuffled-embedding control (``benchmark``'s signal test):

``evidence_shifted``
    prior + λ · ((1 − m) · neighbour offset + m · ridge offset). The neighbour offset is ``gene_delta``'s
    (softmax(cos/τ) over the k nearest training targets, centred on their mean). The ridge maps the embedding to
    the training targets' deltas minus the training mean, each target weighted by its reliability
    (1 − 1/signal_to_noise), with no intercept: its offset also carries the reliability-weighted mean of the deltas
    (the strong targets' shared response), whatever the embedding says.
``evidence_centred``
    the same with the ridge's inputs and outputs centred on their reliability-weighted means: an average embedding
    adds nothing, so the offset is what the embedding knows.

k, τ, the ridge's α, the mix m and λ are chosen by ``gene_delta``'s 5-fold cross-validation over the training
targets (reliability-weighted Pearson on their top DE genes, λ = 0 on the grid, the one-standard-error gate).
Custom runners get the same shuffled controls as registry methods, so the signal block separates what the
embedding adds from what the reweighted prior adds (the shuffled copy keeps the shift, loses the knowledge).

Usage::

    python -m benchmarks.evidence [--db corpus.duckdb] [--set minilm] [--seeds 1-5] [--shuffles 5] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._common import SET, add_screen_arguments, screen_corpus
from gene_corpus.errors import InputError
from scouter_local.conditions import genes_of
from scouter_local.data.link import condition_vectors
from scouter_local.data.perturbation import PerturbationData
from scouter_local.data.splits import Split
from scouter_local.datasets import PRESETS
from scouter_local.embedding.sets import EmbeddingSet, unit_rows
from scouter_local.predictors.gene_delta import GeneDeltaPredictor, cv_scores, neighbour_weights, one_se_choice

REPLOGLE = PRESETS["replogle"]
METHODS = ("gene_delta", "train_mean", "ridge", "evidence_shifted", "evidence_centred")
RUNNER = "benchmarks.evidence:fit_evidence"
ALPHAS = (0.3, 1.0, 3.0, 10.0)
MIXES = (0.0, 0.5, 1.0)
LAMBDAS = np.arange(16) / 10
TAUS = GeneDeltaPredictor.TAU_GRID


def _offsets(x_fit, deltas, reliability, x_query, ks, *, centred: bool) -> dict[tuple, np.ndarray]:
    """Setting ``(k, tau, alpha, mix)`` → ``(n_query, n_genes)`` offset of the query targets from the prior."""
    sim = x_query @ x_fit.T
    neighbours = {(k, t): neighbour_weights(sim, k, t) @ deltas - deltas.mean(0) for k in ks for t in TAUS}
    w = reliability + 1e-3
    x_mean = w @ x_fit / w.sum() if centred else 0.0
    y = deltas - deltas.mean(0)
    y = y - w @ y / w.sum() if centred else y
    xw = (x_fit - x_mean) * np.sqrt(w)[:, None]
    gram, xty = xw.T @ xw, xw.T @ (y * np.sqrt(w)[:, None])
    ridge = {a: (x_query - x_mean) @ np.linalg.solve(gram + a * np.eye(len(gram)), xty) for a in ALPHAS}
    return {
        (k, t, a, m): (1 - m) * neighbours[k, t] + m * ridge[a] for (k, t) in neighbours for a in ALPHAS for m in MIXES
    }


def fit_evidence(
    data: PerturbationData, embeddings: EmbeddingSet, split: Split, method: str, config: dict
) -> tuple[dict[str, np.ndarray], float, list[str]]:
    """Benchmark runner of ``evidence_shifted`` / ``evidence_centred`` (see the module notes)."""
    train, test = list(split.train), list(split.test)
    if not data.is_delta or any(len(genes_of(c)) != 1 for c in train + test):
        raise InputError(f"{method}: expected a pseudo-bulk delta file of single-gene conditions, e.g. Replogle")
    t0 = time.perf_counter()
    vectors = unit_rows(condition_vectors(train + test, data.gene_rows, embeddings), np.float64)
    x, x_test = vectors[: len(train)], vectors[len(train) :]
    deltas = np.stack([data.condition_mean(c) for c in train]).astype(np.float64)
    reliability = data.reliability(train)
    top = min(len(data.de_genes[c]) for c in train)
    centred = method == "evidence_centred"
    ks = GeneDeltaPredictor.k_grid(len(train))
    settings, scores = cv_scores(
        deltas,
        np.stack([data.de_genes[c][:top] for c in train]),
        folds=5,
        seed=config.get("seed", 24),
        lambdas=LAMBDAS,
        prior=lambda fit: deltas[fit].mean(0),
        offsets=lambda fit, held: _offsets(x[fit], deltas[fit], reliability[fit], x[held], ks, centred=centred).items(),
    )
    (i, j), gain, se, _ = one_se_choice(scores, reliability)
    lam = LAMBDAS[j] if gain > se else 0.0
    k, tau, alpha, mix = settings[i]
    offset = _offsets(x, deltas, reliability, x_test, [k], centred=centred)[k, tau, alpha, mix]
    predictions = deltas.mean(0) + lam * offset
    return dict(zip(test, predictions)), time.perf_counter() - t0, train


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_screen_arguments(parser, "replogle")
    parser.add_argument("--set", default=SET, help=f"Embedding set (default: {SET}, built with --db).")
    parser.add_argument("--shuffles", type=int, default=5, help="Shuffled-embedding controls per run.")
    parser.add_argument("--out", type=Path, default=Path("bench_evidence"))
    args = parser.parse_args(argv)

    from scouter_local.benchmarking.benchmark import parse_seeds, run_benchmark
    from scouter_local.evaluation.strong import StrongTargets

    db = screen_corpus(args.db, args.out, args.data_dir, "replogle")
    options = dataclasses.replace(REPLOGLE.options, noise_key=REPLOGLE.strong_key)
    bench = run_benchmark(
        REPLOGLE.path(args.data_dir),
        options,
        db=db,
        set_names=[args.set],
        methods=METHODS,
        seeds=parse_seeds(args.seeds),
        out=args.out,
        runners={m: RUNNER for m in METHODS if m.startswith("evidence_")},
        strong=StrongTargets(REPLOGLE.strong_key, 1.1, {}),
        shuffles=args.shuffles,
    )
    print(bench.table)


if __name__ == "__main__":
    main(sys.argv[1:])
