"""Fidelity to scouter-learn: our Scouter and scouter-learn 0.1.10 on the same Norman splits and embeddings.

For each seed (``--seeds 1-5``) the Norman 2019 subset (norman19 cells) is split by Scouter's condition split
(test 0.2, val 0.1), and both implementations train on it in separate processes that take turns (odd seeds ours
first, even seeds scouter-learn first), each with the same torch threads:

``scouter-local``
    the whole ``scouter-local train --method scouter`` command: imports, reading the h5ad, DE genes, resolving the
    genes through the corpus, training, saving the model folder.
``scouter-learn``
    a script as its README runs it: read a GEARS-style h5ad and an embedding CSV written for it (same cells, same
    conditions, same vectors), ``ScouterData`` setup, ``gene_ranks``, ``get_dropout_non_zero_genes``, the same
    val/test conditions, ``Scouter.train`` with its defaults, ``pred`` on the test conditions (torch seeded; the
    package does not seed it).

Both are scored by this project's metric code on the same test conditions (top-20 non-dropout DE genes). Whole
process = wall seconds from spawn to exit, and the child's CPU seconds (user + system: what the machine's other
jobs change least); fit = the training call alone (``scouter_local.predictors.training.train``;
``Scouter(...)`` + ``model_init`` + ``train``); peak RSS = each child's own ``VmHWM``
(:func:`scouter_local.runtime.own_peak_rss_mib`). Embeddings: all-MiniLM-L6-v2 of the GenePT texts (the
corpus documents of the Norman genes), the setting in which scouter-learn was measured on this subset.

This command installs nothing: without scouter-learn (``pip install -e '.[peer]'``) it says so and measures our
side alone.

Usage::

    python -m benchmarks.fidelity [--seeds 1-5] [--db corpus.duckdb] [--out bench_fidelity] [--epochs N]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
import time
from pathlib import Path

from benchmarks._common import ROOT, SET, add_screen_arguments, run_logged, screen_corpus
from scouter_local.datasets import PRESETS

NORMAN = PRESETS["norman"]
PEER, PEER_VERSION = "scouter-learn", "0.1.10"
OURS = "scouter-local"


def peer_version() -> str | None:
    """The installed scouter-learn version, or ``None``."""
    try:
        return importlib.metadata.version(PEER)
    except importlib.metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------------------------- children
def _finish(result_path: Path, result: dict) -> None:
    from scouter_local.runtime import own_peak_rss_mib

    result_path.write_text(json.dumps({**result, "peak_rss_mib": own_peak_rss_mib()}))


def child_ours(result_path: Path, cli_args: list[str]) -> None:
    """``scouter-local <cli_args>`` in this process, timing its ``training.train`` call."""
    import scouter_local.predictors.training
    from scouter_local.cli import main

    real, fit = scouter_local.predictors.training.train, {}

    def timed(*args, **kwargs):
        began = time.perf_counter()
        predictor = real(*args, **kwargs)
        fit["seconds"] = time.perf_counter() - began
        fit["epochs"] = len(predictor.history_)
        return predictor

    scouter_local.predictors.training.train = timed
    main(cli_args, standalone_mode=False)
    _finish(result_path, {"fit_seconds": fit["seconds"], "epochs": fit["epochs"]})


def child_peer(result_path: Path, spec: dict) -> None:
    """scouter-learn trained and asked for the test conditions, as its README does; predictions to ``spec["pred"]``."""
    import anndata as ad
    import numpy as np
    import pandas as pd
    import torch
    from scouter import Scouter, ScouterData

    torch.set_num_threads(spec["threads"])
    adata = ad.read_h5ad(spec["h5ad"])
    embd = pd.read_csv(spec["embeddings"], index_col=0)
    torch.manual_seed(spec["seed"])
    pert = ScouterData(adata, embd, key_label="condition", key_var_genename="gene_name")
    pert.setup_ad()
    pert.gene_ranks()
    pert.get_dropout_non_zero_genes()
    pert.split_Train_Val_Test(val_conds=spec["val"], test_conds=spec["test"], seed=spec["seed"])
    began = time.perf_counter()
    model = Scouter(pert, device="cpu")
    model.model_init()
    model.train(**({"n_epochs": spec["epochs"]} if spec.get("epochs") else {}))
    fit = time.perf_counter() - began
    pred = model.pred(list(spec["test"]))
    np.savez(spec["pred"], **{c: pred[c].mean(axis=0) for c in spec["test"]})
    _finish(result_path, {"fit_seconds": fit, "epochs": len(model.loss_history["train_loss"])})


# ---------------------------------------------------------------------------------------------- parent
def write_peer_inputs(data, embeddings, folder: Path) -> tuple[Path, Path]:
    """The same cells (GEARS spelling, current symbols) as an h5ad, and the same vectors as Scouter's embedding CSV
    (gene rows plus an all-zero ``ctrl`` row)."""
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    from scouter_local.conditions import CTRL

    folder.mkdir(parents=True, exist_ok=True)
    h5ad, csv = folder / "norman19_gears.h5ad", folder / "embeddings.csv"
    ad.AnnData(
        X=sp.csr_matrix(data.expression()),
        obs=pd.DataFrame({"condition": data.conditions.astype(str)}, index=[f"c{i}" for i in range(data.n_obs)]),
        var=pd.DataFrame({"gene_name": data.genes}, index=data.genes),
    ).write_h5ad(h5ad)
    genes = sorted(data.gene_rows)
    vectors = np.vstack([embeddings.vectors[[data.gene_rows[g] for g in genes]], np.zeros((1, embeddings.dim))])
    pd.DataFrame(vectors, index=[*genes, CTRL]).to_csv(csv)
    return h5ad, csv


def spawn(args: list[str], result: Path, log: Path, env: dict) -> dict:
    """Run ``python -m benchmarks.fidelity <args>``; its result with ``process_seconds`` (wall, spawn to exit) and
    ``process_cpu_seconds`` (user + system CPU of the child, less sensitive to other jobs on the machine)."""
    import resource

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    began, cpu_began = time.perf_counter(), cpu()
    run_logged([sys.executable, "-m", "benchmarks.fidelity", *args], log, label=" ".join(args[:2]), cwd=ROOT, env=env)
    seconds, cpu_seconds = time.perf_counter() - began, cpu() - cpu_began
    return {**json.loads(result.read_text()), "process_seconds": seconds, "process_cpu_seconds": cpu_seconds}


def _cell(values: list[float], nd: int) -> str:
    import numpy as np

    return (
        f"{np.mean(values):.{nd}f} ({min(values):.{nd}f}-{max(values):.{nd}f})"
        if len(values) > 1
        else f"{values[0]:.{nd}f}"
    )


def format_table(runs: dict[str, list[dict]], scores: dict[str, "object"], n_seeds: int, threads: int) -> str:
    """Side-by-side table: one line per figure, one column per implementation, then ours / scouter-learn."""
    import numpy as np

    names = [n for n in (OURS, PEER) if runs.get(n)]
    rows = [
        ("mean NormMSE (top-20 DE)", lambda n: [scores[n].mean("normmse")], 3, False),
        ("median NormMSE", lambda n: [float(scores[n].conditions["normmse"].median())], 3, False),
        ("mean Pearson delta top-20", lambda n: [scores[n].mean("pearson_delta_top20")], 3, False),
        ("whole process, s", lambda n: [r["process_seconds"] for r in runs[n]], 1, True),
        ("whole process, CPU s", lambda n: [r["process_cpu_seconds"] for r in runs[n]], 1, True),
        ("fit, s", lambda n: [r["fit_seconds"] for r in runs[n]], 1, True),
        ("epochs run", lambda n: [r["epochs"] for r in runs[n]], 1, True),
        ("fit per epoch, s", lambda n: [r["fit_seconds"] / r["epochs"] for r in runs[n]], 2, True),
        ("peak RSS (own VmHWM), MiB", lambda n: [r["peak_rss_mib"] for r in runs[n]], 0, True),
    ]
    head = f"{'':<28}" + "".join(f"{n:>24}" for n in names) + (f"{'ratio ours/peer':>17}" if len(names) == 2 else "")
    lines = [head, "-" * len(head)]
    for label, get, nd, spread in rows:
        values = {n: get(n) for n in names}
        line = f"{label:<28}" + "".join(
            f"{_cell(values[n], nd) if spread else f'{values[n][0]:.{nd}f}':>24}" for n in names
        )
        if len(names) == 2:
            line += f"{np.mean(values[OURS]) / np.mean(values[PEER]):>17.2f}"
        lines.append(line)
    n_cond = scores[names[0]].n
    lines.append(
        f"{n_seeds} seeded Scouter splits of the Norman subset, {n_cond} test conditions pooled; "
        f"all-MiniLM-L6-v2 of the GenePT texts; {threads} torch threads, OMP_WAIT_POLICY "
        f"{os.environ.get('OMP_WAIT_POLICY', 'PASSIVE')}; per-seed figures as mean (min-max); processes "
        "alternated"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:  # python -m benchmarks.fidelity --child ours|peer RESULT ...
        if argv[1] == "ours":
            child_ours(Path(argv[2]), argv[3:])
        else:
            child_peer(Path(argv[2]), json.loads(argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_screen_arguments(parser, "norman")
    parser.add_argument("--out", type=Path, default=Path("bench_fidelity"))
    parser.add_argument("--epochs", type=int, default=None, help="Maximum epochs of both (default: their 40).")
    parser.add_argument("--threads", type=int, default=None, help="Torch threads of both (default: ours).")
    args = parser.parse_args(argv)

    import warnings

    from gene_corpus.files import write_json_atomic, write_text_atomic
    from scouter_local.benchmarking.benchmark import parse_seeds
    from scouter_local.data.link import load_embeddings, prepare_data
    from scouter_local.data.splits import make_split
    from scouter_local.evaluation.results import Evaluation
    from scouter_local.evaluation.scoring import evaluate_predictions
    from scouter_local.predictors.checkpoint import load_model
    from scouter_local.runtime import settings

    version = peer_version()
    if version is None:
        print(
            f"{PEER} is not installed: measuring scouter-local alone (for the comparison: pip install -e '.[peer]', "
            f"which adds {PEER}=={PEER_VERSION})",
            flush=True,
        )
    elif version != PEER_VERSION:
        print(f"note: {PEER} {version} is installed; the published figures are of {PEER_VERSION}", flush=True)
    norman = NORMAN.path(args.data_dir)
    out = args.out.resolve()
    db = screen_corpus(args.db, out, args.data_dir, "norman")
    embeddings = load_embeddings(db, SET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = prepare_data(norman, NORMAN.options, db, embeddings)
    threads = args.threads or settings.threads
    # OMP_WAIT_POLICY=PASSIVE: with other jobs on the machine, OpenMP threads that spin-wait at each barrier made
    # both sides' epochs 10x slower (7.5 s instead of 0.7 s on 2 busy cores); the same setting for both
    env = {
        **os.environ,
        "SCOUTER_LOCAL_THREADS": str(threads),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    if version is not None:
        h5ad, csv = write_peer_inputs(data, embeddings, out / "peer")
    runs: dict[str, list[dict]] = {OURS: [], PEER: []}
    evaluations: dict[str, list] = {OURS: [], PEER: []}
    seeds = parse_seeds(args.seeds)
    for i, seed in enumerate(seeds):
        split = make_split(data, "scouter", seed=seed)
        order = [OURS, PEER] if i % 2 == 0 else [PEER, OURS]
        for name in order:
            if name == PEER and version is None:
                continue
            run_dir = out / f"seed{seed}" / name
            run_dir.mkdir(parents=True, exist_ok=True)
            result, log = run_dir / "result.json", run_dir / "log.txt"
            if name == OURS:
                model = run_dir / "model"
                cli = [
                    "train",
                    "--method",
                    "scouter",
                    "--data",
                    str(norman),
                    "--db",
                    str(db),
                    "--set",
                    SET,
                    "--out",
                    str(model),
                    "--seed",
                    str(seed),
                    "--device",
                    "cpu",
                    "--overwrite",
                    *NORMAN.options.to_cli(),
                    *(["--epochs", str(args.epochs)] if args.epochs else []),
                ]
                run = spawn(["--child", "ours", str(result), *cli], result, log, env)
                predictor = load_model(model, embeddings)
                if predictor.split_.test != split.test:
                    sys.exit(f"seed {seed}: the train command drew another split than {split.test}")
                predictions = dict(zip(split.test, predictor.predict(split.test)))
            else:
                import numpy as np

                spec = {
                    "h5ad": str(h5ad),
                    "embeddings": str(csv),
                    "seed": seed,
                    "val": split.val,
                    "test": split.test,
                    "threads": threads,
                    "epochs": args.epochs,
                    "pred": str(run_dir / "pred.npz"),
                }
                run = spawn(["--child", "peer", str(result), json.dumps(spec)], result, log, env)
                with np.load(run_dir / "pred.npz") as saved:
                    predictions = {c: saved[c] for c in split.test}
            scored = evaluate_predictions(data, predictions, split.train, method=name)
            run |= {
                "seed": seed,
                "normmse": scored.mean("normmse"),
                "pearson_delta_top20": scored.mean("pearson_delta_top20"),
            }
            print(
                f"seed {seed} {name:<14} NormMSE {run['normmse']:.3f}  process {run['process_seconds']:.1f} s "
                f"({run['process_cpu_seconds']:.1f} CPU s)  "
                f"fit {run['fit_seconds']:.1f} s  {run['epochs']} epochs  {run['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
            runs[name].append(run)
            evaluations[name].append(scored)
    scores = {n: Evaluation.pooled(e, seeds=seeds) for n, e in evaluations.items() if e}
    table = format_table(runs, scores, len(seeds), threads)
    write_json_atomic(out / "fidelity.json", {"peer_version": version, "threads": threads, "runs": runs}, indent=1)
    write_text_atomic(out / "table.txt", table + "\n")
    print(table)


if __name__ == "__main__":
    main()
