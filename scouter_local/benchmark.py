"""Benchmark: methods × embedding sets × seeded splits, each run in its own process (own time and peak RSS).

``run_benchmark`` prints a table (overall and per-subgroup NormMSE, Pearson Δ, direction accuracy, fit seconds,
peak RSS) and writes ``runs/*.json``, ``conditions.csv``, ``summary.csv`` and plots to the output folder.
A run is ``python -m scouter_local.benchmark SPEC_JSON``; its runner is ``module:function`` (default
:func:`fit_registry_method`), so other implementations (e.g. scouter-learn in ``benchmarks/predictor.py``) are
measured the same way on the same data, split and embeddings.
"""

from __future__ import annotations

import csv
import importlib
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from gene_corpus.errors import InputError
from scouter_local.data import DataOptions, PerturbationData, Split
from scouter_local.embedding_set import EmbeddingSet
from scouter_local.evaluate import METRICS, evaluate_predictions, plot_subgroups, plot_top20, summarize

log = logging.getLogger(__name__)

DEFAULT_RUNNER = "scouter_local.benchmark:fit_registry_method"
#: Methods run together in one process per seed (their time is measured per method, RSS per process).
LIGHT_METHODS = ("gene_delta", "no_change", "train_mean", "additive", "ridge", "knn")
#: Runner of a method = (runner "module:function", method name passed to it).
Runner = Callable[[PerturbationData, EmbeddingSet, Split, str, dict], tuple[dict[str, np.ndarray], float, list[str]]]


def parse_seeds(text: str) -> list[int]:
    """``"1-5"`` → ``[1, 2, 3, 4, 5]``; ``"1,3,7"`` → ``[1, 3, 7]``."""
    try:
        if "-" in text.strip("-"):
            lo, hi = text.split("-", 1)
            return list(range(int(lo), int(hi) + 1))
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError as exc:
        raise InputError(f"--seeds {text!r}: expected a range '1-5' or a list '1,3,7'") from exc


def fit_registry_method(data: PerturbationData, embeddings: EmbeddingSet, split: Split, method: str,
                        config: dict) -> tuple[dict[str, np.ndarray], float, list[str]]:
    """Fit a :data:`~scouter_local.model.METHODS` entry on the split; return test predictions, fit seconds and
    the training conditions."""
    from scouter_local.model import method_params, train_model

    params = method_params(method)
    t0 = time.perf_counter()
    predictor = train_model(data, embeddings, split, method=method,
                            **{k: v for k, v in config.items() if k in params})
    seconds = time.perf_counter() - t0
    return dict(zip(split.test, predictor.predict(split.test))), seconds, predictor.train_conditions_


def _load_runner(spec: str) -> Runner:
    module, _, func = spec.partition(":")
    return getattr(importlib.import_module(module), func)


def run_one(spec: dict) -> list[dict]:
    """Runs in this process: read data, draw the split, then per method fit, predict the test conditions, evaluate.

    ``spec`` keys: ``data``, ``options``, ``db``, ``set``, ``methods`` (name → runner ``module:function``),
    ``split``, ``seed``, ``test_ratio``, ``val_ratio``, ``config``. Peak RSS is that of this process after all.
    """
    from scouter_local.data import load_embeddings, make_split, prepare_data

    embeddings = load_embeddings(spec["db"], spec["set"])
    data = prepare_data(spec["data"], DataOptions.from_json(spec["options"]), spec["db"], embeddings)
    split = make_split(data, spec["split"], seed=spec["seed"], test_ratio=spec["test_ratio"],
                       val_ratio=spec["val_ratio"])
    if not split.test:
        raise InputError(f"split {spec['split']!r} has no test condition to benchmark on")
    results = []
    for method, runner in spec["methods"].items():
        predictions, seconds, train_conditions = _load_runner(runner)(
            data, embeddings, split, method, {"seed": spec["seed"], **spec["config"]})
        result = evaluate_predictions(data, predictions, train_conditions, method=method)
        result.update(set=spec["set"], seed=spec["seed"], split=split.to_json(), fit_seconds=seconds,
                      predictions={c: np.asarray(p).tolist() for c, p in predictions.items()})
        results.append(result)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for r in results:
        r["peak_rss_mib"] = rss
    return results


def _spawn(spec: dict) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    proc = subprocess.run([sys.executable, "-m", "scouter_local.benchmark", json.dumps(spec)], capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise InputError(f"benchmark run {','.join(spec['methods'])} seed {spec['seed']} on set {spec['set']} "
                         f"failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pooled(runs: list[dict]) -> dict:
    """Summary over all test conditions of several seeds (one method, one set)."""
    out = summarize([r for run in runs for r in run["conditions"]], method=runs[0]["method"])
    out.update(set=runs[0]["set"], fit_seconds=[r["fit_seconds"] for r in runs],
               peak_rss_mib=[r["peak_rss_mib"] for r in runs])
    return out


def format_table(summaries: list[dict]) -> str:
    """Plain-text table: one line per (set, method)."""
    from scouter_local.data import SUBGROUPS

    def f(x, nd=3):
        return "-" if x is None else f"{x:.{nd}f}"

    head = (f"{'set':<18} {'method':<14} {'n':>4} {'NormMSE mean':>12} {'median':>7} {'PΔ20':>6} {'PΔall':>6} "
            f"{'dir20':>6} " + " ".join(f"{g:>12}" for g in SUBGROUPS) + f" {'fit s (min-max)':>16} {'RSS MiB':>8}")
    lines = [head, "-" * len(head)]
    for s in summaries:
        o = s["overall"]
        sub = " ".join(f"{f(s['subgroups'].get(g, {}).get('normmse', {}).get('mean')):>12}" for g in SUBGROUPS)
        fit = f"{min(s['fit_seconds']):.1f}-{max(s['fit_seconds']):.1f}"
        lines.append(f"{s['set']:<18} {s['method']:<14} {s['n_conditions']:>4} {f(o['normmse']['mean']):>12} "
                     f"{f(o['normmse']['median']):>7} {f(o['pearson_delta_top20']['mean']):>6} "
                     f"{f(o['pearson_delta_all']['mean']):>6} {f(o['direction_top20']['mean']):>6} {sub} "
                     f"{fit:>16} {max(s['peak_rss_mib']):>8.0f}")
    lines.append("reference (DESIGN.md, GenePT texts + MiniLM, Norman subset, 5 splits): scouter-learn NormMSE 0.715 "
                 "(median 0.475), train_mean 0.744 (0.578); 16-25 s and 750 MiB per split")
    return "\n".join(lines)


def run_benchmark(data_path: str | os.PathLike, options: DataOptions, *, db: str | os.PathLike,
                  set_names: Sequence[str], methods: Sequence[str], seeds: Sequence[int], out: str | os.PathLike,
                  split: str = "scouter", test_ratio: float = 0.2, val_ratio: float = 0.1, config: dict | None = None,
                  runners: dict[str, str] | None = None) -> str:
    """Run every (set, method, seed) in its own process, write results to ``out`` and return the table.

    Parameters
    ----------
    runners
        Method name → ``"module:function"`` for methods outside the registry (default runner otherwise).
    """
    from scouter_local.model import METHODS

    runners = runners or {}
    unknown = [m for m in methods if m not in METHODS and m not in runners]
    if unknown:
        raise InputError(f"--methods: unknown method {unknown[0]!r}; expected some of {', '.join(METHODS)}")
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    data_path = str(Path(data_path).resolve())
    summaries = []
    # Baselines share one process per seed (they fit in well under a second); every other method has its own.
    light = [m for m in methods if m in LIGHT_METHODS]
    groups = [[m] for m in methods if m not in LIGHT_METHODS] + ([light] if light else [])
    jobs = [(s, g, seed) for s in set_names for seed in seeds for g in groups]
    results: dict[tuple[str, str], list[dict]] = {}
    for set_name, group, seed in tqdm(jobs, desc="benchmark runs", unit="run"):
        spec = {"data": data_path, "options": options.to_json(), "db": str(Path(db).resolve()), "set": set_name,
                "methods": {m: runners.get(m, DEFAULT_RUNNER) for m in group}, "split": split, "seed": seed,
                "test_ratio": test_ratio, "val_ratio": val_ratio, "config": config or {}}
        for run in _spawn(spec):
            method = run["method"]
            log.info("%s %s seed %d: NormMSE %.3f, %.1f s, %.0f MiB", set_name, method, seed,
                     run["overall"]["normmse"]["mean"] or float("nan"), run["fit_seconds"], run["peak_rss_mib"])
            (out / "runs" / f"{set_name}_{method}_seed{seed}.json").write_text(json.dumps(run, indent=1))
            results.setdefault((set_name, method), []).append(run)
    for runs in results.values():
        summaries.append(_pooled(runs))
    _write_outputs(out, summaries, results, data_path, options, db)
    table = format_table(summaries)
    (out / "table.txt").write_text(table + "\n")
    return table


def _write_outputs(out: Path, summaries: list[dict], results: dict, data_path: str, options: DataOptions,
                   db) -> None:
    with open(out / "conditions.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["set", "method", "seed", "condition", "subgroup", *METRICS])
        for (set_name, method), runs in results.items():
            for run in runs:
                for r in run["conditions"]:
                    w.writerow([set_name, method, run["seed"], r["condition"], r["subgroup"], *[r[m] for m in METRICS]])
    with open(out / "summary.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["set", "method", "group", "n", *[f"{m}_{s}" for m in METRICS for s in ("mean", "median")],
                    "fit_seconds_mean", "peak_rss_mib_max"])
        for s in summaries:
            for group, vals in [("overall", {"n": s["n_conditions"], **s["overall"]}), *s["subgroups"].items()]:
                w.writerow([s["set"], s["method"], group, vals["n"],
                            *[vals[m][k] for m in METRICS for k in ("mean", "median")],
                            float(np.mean(s["fit_seconds"])), max(s["peak_rss_mib"])])
    (out / "summary.json").write_text(json.dumps([{k: v for k, v in s.items() if k != "conditions"}
                                                  for s in summaries], indent=1))
    from scouter_local.data import load_embeddings, prepare_data

    for set_name in dict.fromkeys(s["set"] for s in summaries):
        plot_subgroups([s for s in summaries if s["set"] == set_name], out / f"subgroups_{set_name}.png")
        first = {m: runs[0] for (sn, m), runs in results.items() if sn == set_name}
        data = prepare_data(data_path, options, db, load_embeddings(db, set_name))
        for cond in list(next(iter(first.values()))["predictions"])[:4]:
            plot_top20(data, cond, {m: np.asarray(r["predictions"][cond]) for m, r in first.items()},
                       out / f"top20_{set_name}_seed{next(iter(first.values()))['seed']}_{cond.replace('+', '_')}.png")


def main(argv: list[str]) -> None:
    """Child entry point: run one spec, print its result as one JSON line."""
    import torch

    torch.set_num_threads(2)
    result = run_one(json.loads(argv[0]))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
