"""Benchmark: methods × embedding sets × seeded splits, each run in its own process (own time and peak RSS).

``run_benchmark`` prints a table (overall and per-subgroup NormMSE, Pearson Δ, direction accuracy, fit seconds,
peak RSS; with :class:`~scouter_local.evaluate.StrongTargets` a second block for the ``strong`` subgroup) and writes
``runs/*.json``, ``conditions.csv``, ``summary.csv``, ``summary.json``, ``table.txt`` and plots (mean NormMSE and
Pearson Δ top-20 per subgroup, top-20 bars) to the output folder, each file atomically.
A run is ``python -m scouter_local.benchmark SPEC_JSON``; its runner is ``module:function`` (default
:func:`fit_registry_method`), so other implementations (e.g. scouter-learn in ``benchmarks/predictor.py``) are
measured the same way on the same data, split and embeddings.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gene_corpus.atomic import write_csv_atomic, write_json_atomic, write_text_atomic
from gene_corpus.errors import InputError
from scouter_local.data import DataOptions, PerturbationData, Split
from scouter_local.embedding_set import EmbeddingSet
from scouter_local.evaluate import (
    METRICS,
    STRONG,
    StrongTargets,
    evaluate_predictions,
    obs_condition_values,
    plot_subgroups,
    plot_top20,
    read_obs_column,
    summarize,
)

log = logging.getLogger(__name__)

DEFAULT_RUNNER = "scouter_local.benchmark:fit_registry_method"
#: Methods run together in one process per seed (their time is measured per method, RSS per process).
LIGHT_METHODS = ("gene_delta", "no_change", "train_mean", "additive", "ridge", "knn")
#: Runner of a method = (runner "module:function", method name passed to it).
Runner = Callable[[PerturbationData, EmbeddingSet, Split, str, dict], tuple[dict[str, np.ndarray], float, list[str]]]
#: Data file name → the reference line printed under its table (scouter-learn measured on that file).
REFERENCES = {
    "norman2019_mcfaline2023_subset.h5ad": "reference (scouter-learn 0.1.10 on this Norman subset, GenePT texts + MiniLM, "
    "5 Scouter splits): NormMSE 0.715 (median 0.475), train_mean 0.744 (0.578); 16-25 s and 750 MiB per split",
}


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
    ``split``, ``seed``, ``test_ratio``, ``val_ratio``, ``config``, optional ``strong`` (``{"key", "above"}``).
    Peak RSS is that of this process after all.
    """
    from scouter_local.data import load_embeddings, make_split, prepare_data

    embeddings = load_embeddings(spec["db"], spec["set"])
    data = prepare_data(spec["data"], DataOptions.from_json(spec["options"]), spec["db"], embeddings)
    strong = None
    if spec.get("strong"):
        key = spec["strong"]["key"]
        strong = StrongTargets(key, spec["strong"]["above"], obs_condition_values(spec["data"], key, data))
    split = make_split(data, spec["split"], seed=spec["seed"], test_ratio=spec["test_ratio"],
                       val_ratio=spec["val_ratio"])
    if not split.test:
        raise InputError(f"split {spec['split']!r} has no test condition to benchmark on")
    results = []
    for method, runner in spec["methods"].items():
        predictions, seconds, train_conditions = _load_runner(runner)(
            data, embeddings, split, method, {"seed": spec["seed"], **spec["config"]})
        result = evaluate_predictions(data, predictions, train_conditions, method=method, strong=strong)
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
               peak_rss_mib=[r["peak_rss_mib"] for r in runs],
               seeds={"seed": [r["seed"] for r in runs],
                      **{m: [r["overall"][m]["mean"] for r in runs] for m in ("normmse", "pearson_delta_top20")}})
    if "strong_rule" in runs[0]:
        out["strong_rule"] = runs[0]["strong_rule"]
    return out


def _f(x: float | None, nd: int = 3) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _seed_sd(values: list[float | None]) -> float | None:
    """Standard deviation of the per-seed means (``None`` with fewer than two defined values)."""
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def _metric_cells(n: int, group: dict) -> str:
    """``n``, NormMSE mean and median, mean Pearson Δ top-20 / all, mean direction accuracy of one group."""
    return (f"{n:>4} {_f(group['normmse']['mean']):>12} {_f(group['normmse']['median']):>7} "
            f"{_f(group['pearson_delta_top20']['mean']):>6} {_f(group['pearson_delta_all']['mean']):>6} "
            f"{_f(group['direction_top20']['mean']):>6}")


def format_table(summaries: list[dict], reference: str | None = None) -> str:
    """Plain-text table: one line per (set, method); summaries with a ``strong`` subgroup add a second block with
    the same metrics on the strong conditions only; ``reference`` (e.g. :data:`REFERENCES`) is the last line."""
    from scouter_local.data import SUBGROUPS

    metrics_head = f"{'n':>4} {'NormMSE mean':>12} {'median':>7} {'PΔ20':>6} {'PΔall':>6} {'dir20':>6}"
    head = (f"{'set':<18} {'method':<14} {metrics_head} {'sd/seed':>7} " + " ".join(f"{g:>12}" for g in SUBGROUPS)
            + f" {'fit s (min-max)':>16} {'RSS MiB':>8}")
    lines = [head, "-" * len(head)]
    for s in summaries:
        sub = " ".join(f"{_f(s['subgroups'].get(g, {}).get('normmse', {}).get('mean')):>12}" for g in SUBGROUPS)
        fit = f"{min(s['fit_seconds']):.1f}-{max(s['fit_seconds']):.1f}"
        sd = _f(_seed_sd(s["seeds"]["normmse"]))
        lines.append(f"{s['set']:<18} {s['method']:<14} {_metric_cells(s['n_conditions'], s['overall'])} {sd:>7} "
                     f"{sub} {fit:>16} {max(s['peak_rss_mib']):>8.0f}")
    strong = [s for s in summaries if STRONG in s["subgroups"]]
    if strong:
        rule = strong[0]["strong_rule"]
        head = f"{'set':<18} {'method':<14} {metrics_head}"
        lines += ["", f"strong targets: mean obs[{rule['key']!r}] > {rule['above']:g}", head, "-" * len(head)]
        for s in strong:
            group = s["subgroups"][STRONG]
            lines.append(f"{s['set']:<18} {s['method']:<14} {_metric_cells(group['n'], group)}")
    lines.append("sd/seed: standard deviation of the per-seed mean NormMSE (the seeds' spread)")
    if reference:
        lines.append(reference)
    return "\n".join(lines)


def run_benchmark(data_path: str | os.PathLike, options: DataOptions, *, db: str | os.PathLike,
                  set_names: Sequence[str], methods: Sequence[str], seeds: Sequence[int], out: str | os.PathLike,
                  split: str = "scouter", test_ratio: float = 0.2, val_ratio: float = 0.1, config: dict | None = None,
                  runners: dict[str, str] | None = None, strong: StrongTargets | None = None) -> str:
    """Run every (set, method, seed) in its own process, write results to ``out`` and return the table.

    Parameters
    ----------
    runners
        Method name → ``"module:function"`` for methods outside the registry (default runner otherwise).
    strong
        Rule (``key``, ``above``; its ``values`` are ignored) of the extra subgroup ``strong``: each run reads
        ``obs[key]`` of ``data_path`` for its own conditions.
    """
    from scouter_local.model import METHODS

    runners = runners or {}
    unknown = [m for m in methods if m not in METHODS and m not in runners]
    if unknown:
        raise InputError(f"--methods: unknown method {unknown[0]!r}; expected some of {', '.join(METHODS)}")
    if strong is not None:
        read_obs_column(data_path, strong.key)  # a missing or non-numeric column fails before any run
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
                "test_ratio": test_ratio, "val_ratio": val_ratio, "config": config or {},
                "strong": strong.rule() if strong is not None else None}
        for run in _spawn(spec):
            method = run["method"]
            log.info("%s %s seed %d: NormMSE %.3f, %.1f s, %.0f MiB", set_name, method, seed,
                     run["overall"]["normmse"]["mean"] or float("nan"), run["fit_seconds"], run["peak_rss_mib"])
            write_json_atomic(out / "runs" / f"{set_name}_{method}_seed{seed}.json", run, indent=1)
            results.setdefault((set_name, method), []).append(run)
    for runs in results.values():
        summaries.append(_pooled(runs))
    _write_outputs(out, summaries, results, data_path, options, db)
    table = format_table(summaries, REFERENCES.get(Path(data_path).name))
    write_text_atomic(out / "table.txt", table + "\n")
    return table


def _write_outputs(out: Path, summaries: list[dict], results: dict, data_path: str, options: DataOptions,
                   db) -> None:
    # the strong flag and value columns come last, and only when the strong subgroup was asked for
    extra = [STRONG, "strong_value"] if any("strong_rule" in s for s in summaries) else []
    write_csv_atomic(out / "conditions.csv",
                     ["set", "method", "seed", "condition", "subgroup", *METRICS, *extra],
                     ([set_name, method, run["seed"], r["condition"], r["subgroup"], *[r[m] for m in METRICS],
                       *[r.get(k) for k in extra]]
                      for (set_name, method), runs in results.items() for run in runs for r in run["conditions"]))
    write_csv_atomic(out / "summary.csv",
                     ["set", "method", "group", "n", *[f"{m}_{s}" for m in METRICS for s in ("mean", "median")],
                      "fit_seconds_mean", "peak_rss_mib_max", "normmse_seed_sd"],
                     ([s["set"], s["method"], group, vals["n"], *[vals[m][k] for m in METRICS for k in ("mean", "median")],
                       float(np.mean(s["fit_seconds"])), max(s["peak_rss_mib"]),
                       _seed_sd(s["seeds"]["normmse"]) if group == "overall" else None]
                      for s in summaries
                      for group, vals in [("overall", {"n": s["n_conditions"], **s["overall"]}), *s["subgroups"].items()]))
    write_json_atomic(out / "summary.json", [{k: v for k, v in s.items() if k != "conditions"} for s in summaries],
                      indent=1)
    from scouter_local.data import load_embeddings, prepare_data

    for set_name in dict.fromkeys(s["set"] for s in summaries):
        of_set = [s for s in summaries if s["set"] == set_name]
        plot_subgroups(of_set, out / f"subgroups_{set_name}.png")
        plot_subgroups(of_set, out / f"subgroups_{set_name}_pearson_delta_top20.png", metric="pearson_delta_top20")
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
