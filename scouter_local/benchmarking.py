"""Benchmark: methods × embedding sets × seeded splits, each run in its own process (own time and peak memory),
each embedding-using method beside its shuffled-embedding control, and the noise ceiling of the test conditions.

:func:`run_benchmark` prints a table and writes ``runs/*.json``, ``conditions.csv``, ``summary.csv``,
``summary.json``, ``table.txt`` and plots to the output folder, each file atomically. A run is
``python -m scouter_local.benchmarking SPEC_JSON``; its runner is ``module:function`` (default
:func:`fit_registry_method`), so another implementation can be measured the same way on the same data, split and
embeddings (``benchmarks/fidelity.py`` instead times whole ``train`` processes against scouter-learn's script).

The control: the same method fitted on the same genes with their vectors row-permuted (``shuffles`` seeded
permutations among the screen's genes) and scored on the same test conditions; :func:`~scouter_local.evaluation.
signal_test` says whether the real embeddings beat their shuffled copies (``signal`` in the table and the JSON).
"""

from __future__ import annotations

import dataclasses
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
import pandas as pd
from tqdm import tqdm

from gene_corpus.atomic import write_csv_atomic, write_json_atomic, write_text_atomic
from gene_corpus.errors import InputError
from scouter_local.data import SUBGROUPS, DataOptions, PerturbationData, Split
from scouter_local.embedding_set import EmbeddingSet
from scouter_local.evaluation import (
    CEILING,
    METRICS,
    STRONG,
    Evaluation,
    StrongTargets,
    evaluate_predictions,
    gap_closed,
    noise_ceiling,
    obs_condition_values,
    read_obs_column,
    signal_test,
)
from scouter_local.predictors import EMBEDDING_METHODS, METHODS

log = logging.getLogger(__name__)

DEFAULT_RUNNER = "scouter_local.benchmarking:fit_registry_method"
#: Methods run together in one process per seed (their time is measured per method, memory per process).
LIGHT_METHODS = ("gene_delta", "no_change", "train_mean", "additive", "ridge", "knn")
#: Shuffled-embedding copies of each set per run, by default.
DEFAULT_SHUFFLES = 5
#: Runner of a method: ``(data, embeddings, split, method, config)`` → ``(test predictions, fit seconds,
#: train conditions)``.
Runner = Callable[[PerturbationData, EmbeddingSet, Split, str, dict], tuple[dict[str, np.ndarray], float, list[str]]]


def parse_seeds(text: str) -> list[int]:
    """``"1-5"`` → ``[1, 2, 3, 4, 5]``; ``"1,3,7"`` → ``[1, 3, 7]``."""
    try:
        if "-" in text.strip("-"):
            lo, hi = text.split("-", 1)
            return list(range(int(lo), int(hi) + 1))
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError as exc:
        raise InputError(f"seeds={text!r}: expected a range '1-5' or a list '1,3,7'") from exc


def own_peak_rss_mib() -> float:
    """Peak resident memory of this process alone (``VmHWM``; ``ru_maxrss`` where there is no ``/proc``, which on
    Linux also counts a parent's peak carried over a fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)


def fit_registry_method(
    data: PerturbationData, embeddings: EmbeddingSet, split: Split, method: str, config: dict
) -> tuple[dict[str, np.ndarray], float, list[str]]:
    """Fit a :data:`~scouter_local.predictors.METHODS` entry on the split; return test predictions, fit seconds and
    the training conditions."""
    from scouter_local.predictors import method_params
    from scouter_local.training import train

    params = method_params(method)
    t0 = time.perf_counter()
    predictor = train(data, embeddings, method=method, split=split, **{k: v for k, v in config.items() if k in params})
    seconds = time.perf_counter() - t0
    return dict(zip(split.test, predictor.predict(split.test))), seconds, predictor.train_conditions_


def shuffled_embeddings(embeddings: EmbeddingSet, data: PerturbationData, seed: int) -> EmbeddingSet:
    """``embeddings`` with the vectors of the screen's genes (``data.gene_rows``) permuted among them (seeded)."""
    rows = np.unique(list(data.gene_rows.values()))
    vectors = embeddings.vectors.copy()
    vectors[rows] = embeddings.vectors[np.random.default_rng(seed).permutation(rows)]
    return dataclasses.replace(
        embeddings,
        vectors=vectors,
        name=f"{embeddings.name}~shuffled{seed}",
        fingerprint=f"{embeddings.fingerprint}~shuffled{seed}",
    )


def _load_runner(spec: str) -> Runner:
    module, _, func = spec.partition(":")
    return getattr(importlib.import_module(module), func)


def run_one(spec: dict) -> list[dict]:
    """Runs in this process: read data, draw the split, then per method fit, predict the test conditions, evaluate
    (and the shuffled controls of embedding-using methods); with ``spec["ceiling"]`` also the noise ceiling.

    ``spec`` keys: ``data``, ``options``, ``db``, ``set``, ``methods`` (name → runner ``module:function``),
    ``split``, ``seed``, ``test_ratio``, ``val_ratio``, ``config``, ``shuffles``, ``ceiling``, optional ``strong``
    (``{"key", "above"}``). The peak memory of each entry is that of this process.
    """
    from scouter_local.data import load_embeddings, make_split, prepare_data

    embeddings = load_embeddings(spec["db"], spec["set"])
    data = prepare_data(spec["data"], DataOptions.from_json(spec["options"]), spec["db"], embeddings)
    strong = None
    if spec.get("strong"):
        key = spec["strong"]["key"]
        strong = StrongTargets(key, spec["strong"]["above"], obs_condition_values(spec["data"], key, data))
    split = make_split(
        data, spec["split"], seed=spec["seed"], test_ratio=spec["test_ratio"], val_ratio=spec["val_ratio"]
    )
    if not split.test:
        raise InputError(f"split {spec['split']!r} has no test condition to benchmark on")
    config = {"seed": spec["seed"], **spec["config"]}
    results = []
    for method, runner_name in spec["methods"].items():
        runner = _load_runner(runner_name)
        predictions, seconds, train_conditions = runner(data, embeddings, split, method, config)
        result = evaluate_predictions(data, predictions, train_conditions, method=method, strong=strong)
        entry = {
            **result.to_dict(),
            "set": spec["set"],
            "seed": spec["seed"],
            "split": split.to_json(),
            "is_delta": data.is_delta,
            "fit_seconds": seconds,
            "predictions": {c: np.asarray(p).tolist() for c, p in predictions.items()},
        }
        if method in EMBEDDING_METHODS or runner_name != DEFAULT_RUNNER:
            entry["shuffled"] = []
            for k in range(spec.get("shuffles", 0)):
                control = shuffled_embeddings(embeddings, data, seed=10_000 * spec["seed"] + k)
                shuffled, _, _ = runner(data, control, split, method, config)
                scored = evaluate_predictions(data, shuffled, train_conditions, method=method)
                entry["shuffled"].append(scored.conditions[["condition", *METRICS]].to_dict("records"))
        results.append(entry)
    if spec.get("ceiling"):
        ceiling = noise_ceiling(data, split.test, split.train, noise=data.noise or None, strong=strong)
        if ceiling is not None:
            results.append(
                {
                    **ceiling.to_dict(),
                    "set": spec["set"],
                    "seed": spec["seed"],
                    "split": split.to_json(),
                    "is_delta": data.is_delta,
                    "fit_seconds": 0.0,
                    "predictions": {},
                }
            )
    rss = own_peak_rss_mib()
    for r in results:
        r["peak_rss_mib"] = rss
    return results


def _spawn(spec: dict) -> list[dict]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "scouter_local.benchmarking", json.dumps(spec)], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise InputError(
            f"benchmark run {','.join(spec['methods'])} seed {spec['seed']} on set {spec['set']} failed: {tail}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------- pooling


@dataclasses.dataclass
class MethodResult:
    """One (set, method) of a benchmark, pooled over its seeds.

    Attributes
    ----------
    set, method
        Embedding set and method (``ceiling`` for the noise ceiling).
    runs
        Per seed: the run as written to ``runs/*.json``.
    per_seed
        Per seed: its :class:`Evaluation`.
    evaluation
        The test conditions of all seeds pooled (``seed`` column).
    shuffled
        Per permutation: the shuffled control pooled the same way (empty without shuffles).
    signal
        Block (``overall``, ``strong``) → :func:`~scouter_local.evaluation.signal_test` result.
    gap_closed
        Block → metric → share of the gap from ``train_mean`` to the ceiling this method closes.
    """

    set: str
    method: str
    runs: list[dict]
    per_seed: list[Evaluation]
    evaluation: Evaluation
    shuffled: list[Evaluation] = dataclasses.field(default_factory=list)
    signal: dict[str, dict] = dataclasses.field(default_factory=dict)
    gap_closed: dict[str, dict] = dataclasses.field(default_factory=dict)

    @classmethod
    def pool(cls, runs: list[dict], *, signal_metric: str) -> MethodResult:
        seeds = [r["seed"] for r in runs]
        per_seed = [Evaluation.from_dict(r) for r in runs]
        evaluation = Evaluation.pooled(per_seed, seeds=seeds)
        n_shuffles = min((len(r.get("shuffled", [])) for r in runs), default=0)
        shuffled = [
            Evaluation.pooled([Evaluation.from_rows(r["shuffled"][k], method=r["method"]) for r in runs], seeds=seeds)
            for k in range(n_shuffles)
        ]
        result = cls(runs[0]["set"], runs[0]["method"], runs, per_seed, evaluation, shuffled)
        if shuffled:
            result.signal = {
                block: signal_test(evaluation, shuffled, metric=signal_metric, group=block)
                for block in ("overall", STRONG)
                if block in evaluation.groups
            }
        return result

    def seed_means(self, metric: str) -> list[float | None]:
        return [e.mean(metric) for e in self.per_seed]

    def to_json(self) -> dict:
        """The ``summary.json`` entry: the pooled evaluation (no conditions), ``set``, ``fit_seconds``,
        ``peak_rss_mib``, ``seeds``, and where computed ``signal`` and ``gap_closed``."""
        out = {
            **self.evaluation.to_dict(conditions=False),
            "set": self.set,
            "fit_seconds": [r["fit_seconds"] for r in self.runs],
            "peak_rss_mib": [r["peak_rss_mib"] for r in self.runs],
            "seeds": {
                "seed": [r["seed"] for r in self.runs],
                **{m: self.seed_means(m) for m in ("normmse", "pearson_delta_top20")},
            },
        }
        if self.signal:
            out["signal"] = self.signal
        if self.gap_closed:
            out["gap_closed"] = self.gap_closed
        return out


def _add_gaps(results: list[MethodResult]) -> None:
    """Fill ``gap_closed`` of each method of a set that has both ``train_mean`` and a ``ceiling`` entry."""
    for set_name in dict.fromkeys(r.set for r in results):
        of_set = {r.method: r for r in results if r.set == set_name}
        base, top = of_set.get("train_mean"), of_set.get(CEILING)
        if base is None or top is None:
            continue
        for r in of_set.values():
            if r.method == CEILING:
                continue
            r.gap_closed = {
                block: {
                    m: gap_closed(
                        r.evaluation.mean(m, block), base.evaluation.mean(m, block), top.evaluation.mean(m, block)
                    )
                    for m in METRICS
                }
                for block in ("overall", STRONG)
                if block in r.evaluation.groups
            }


# ---------------------------------------------------------------------------------------------- table


def _f(x: float | None, nd: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{nd}f}"


def _seed_sd(values: Sequence[float | None]) -> float | None:
    """Standard deviation of the per-seed means (``None`` with fewer than two defined values)."""
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def _metric_cells(row: pd.Series) -> str:
    """``n``, NormMSE mean and median, mean Pearson Δ top-20 / all, mean direction accuracy of one summary row."""
    return (
        f"{int(row['n']):>4} {_f(row['normmse_mean']):>12} {_f(row['normmse_median']):>7} "
        f"{_f(row['pearson_delta_top20_mean']):>6} {_f(row['pearson_delta_all_mean']):>6} "
        f"{_f(row['direction_top20_mean']):>6}"
    )


def _gap_cell(r: MethodResult, block: str, metric: str) -> str:
    value = r.gap_closed.get(block, {}).get(metric)
    return f"{value:>+9.2f}" if value is not None else f"{'-':>9}"


_GAP_LABEL = {"normmse": "gap NMSE", "pearson_delta_top20": "gap PΔ20", "pearson_delta_all": "gap PΔall"}


def gap_metric(results: Sequence[MethodResult], signal_metric: str) -> str:
    """The metric whose gap to the ceiling the table shows: the signal metric, or Pearson Δ on all genes where the
    ceiling has only that one (pseudo-bulk deltas with a noise column)."""
    ceiling = next((r for r in results if r.method == CEILING), None)
    if ceiling is not None and ceiling.evaluation.mean(signal_metric) is None:
        return "pearson_delta_all"
    return signal_metric


def format_table(results: Sequence[MethodResult], *, signal_metric: str, notes: Sequence[str] = ()) -> str:
    """Plain-text table: one line per (set, method) with the noise ceiling among them; summaries with a ``strong``
    group add a second block on the strong conditions; then the real-vs-shuffled embedding block."""
    gap = gap_metric(results, signal_metric)
    metrics_head = f"{'n':>4} {'NormMSE mean':>12} {'median':>7} {'PΔ20':>6} {'PΔall':>6} {'dir20':>6}"
    gap_head = f"{_GAP_LABEL[gap]:>9}"
    head = (
        f"{'set':<18} {'method':<14} {metrics_head} {'sd/seed':>7} {gap_head} "
        + " ".join(f"{g:>12}" for g in SUBGROUPS)
        + f" {'fit s (min-max)':>16} {'RSS MiB':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        summary = r.evaluation.summary
        sub = " ".join(f"{_f(summary.at[g, 'normmse_mean'] if g in summary.index else None):>12}" for g in SUBGROUPS)
        fit = f"{min(x['fit_seconds'] for x in r.runs):.1f}-{max(x['fit_seconds'] for x in r.runs):.1f}"
        lines.append(
            f"{r.set:<18} {r.method:<14} {_metric_cells(summary.loc['overall'])} "
            f"{_f(_seed_sd(r.seed_means('normmse'))):>7} {_gap_cell(r, 'overall', gap)} {sub} "
            f"{fit:>16} {max(x['peak_rss_mib'] for x in r.runs):>8.0f}"
        )
    strong = [r for r in results if STRONG in r.evaluation.groups]
    if strong:
        rule = strong[0].evaluation.info["strong_rule"]
        head = f"{'set':<18} {'method':<14} {metrics_head} {gap_head}"
        lines += ["", f"strong targets: mean obs[{rule['key']!r}] > {rule['above']:g}", head, "-" * len(head)]
        for r in strong:
            lines.append(
                f"{r.set:<18} {r.method:<14} {_metric_cells(r.evaluation.summary.loc[STRONG])} "
                f"{_gap_cell(r, STRONG, gap)}"
            )
    tested = [(r, block, s) for r in results for block, s in r.signal.items()]
    if tested:
        n_shuffles = len(tested[0][0].shuffled)
        head = (
            f"{'set':<18} {'method':<14} {'block':<8} {'metric':<20} {'real':>7} {'shuffled':>8} {'delta':>7} "
            f"{'p':>7}  verdict"
        )
        lines += [
            "",
            f"real vs shuffled embeddings ({n_shuffles} row permutations of the screen's genes; paired "
            "one-sided sign-flip test over test conditions; delta > 0 = real better)",
            head,
            "-" * len(head),
        ]
        for r, block, s in tested:
            lines.append(
                f"{r.set:<18} {r.method:<14} {block:<8} {s['metric']:<20} {_f(s['real']):>7} "
                f"{_f(s['shuffled']):>8} {_f(s['delta'], 3):>7} {_f(s['p_value'], 4):>7}  {s['verdict']}"
            )
    lines.append(
        "sd/seed: standard deviation of the per-seed mean NormMSE (the seeds' spread); gap: share of the gap "
        f"from train_mean to the noise ceiling closed on mean {gap}"
    )
    lines += list(notes)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- driver


@dataclasses.dataclass
class Benchmark:
    """What :func:`run_benchmark` measured: the printed ``table`` and one :class:`MethodResult` per (set, method)."""

    table: str
    results: list[MethodResult]

    def get(self, set_name: str, method: str) -> MethodResult | None:
        return next((r for r in self.results if r.set == set_name and r.method == method), None)


def run_benchmark(
    data_path: str | os.PathLike,
    options: DataOptions,
    *,
    db: str | os.PathLike,
    set_names: Sequence[str],
    methods: Sequence[str],
    seeds: Sequence[int],
    out: str | os.PathLike,
    split: str = "scouter",
    test_ratio: float = 0.2,
    val_ratio: float = 0.1,
    config: dict | None = None,
    runners: dict[str, str] | None = None,
    strong: StrongTargets | None = None,
    shuffles: int = DEFAULT_SHUFFLES,
) -> Benchmark:
    """Run every (set, method, seed) in its own process, write results to ``out``; return the table and results.

    Parameters
    ----------
    runners
        Method name → ``"module:function"`` for methods outside the registry (default runner otherwise); they get
        the embedding set, and so their shuffled controls too.
    strong
        Rule (``key``, ``above``; its ``values`` are ignored) of the extra group ``strong``: each run reads
        ``obs[key]`` of ``data_path`` for its own conditions.
    shuffles
        Row-permuted copies of each set fitted beside every embedding-using method (0: no control).

    The noise ceiling of single cells comes from their variances; that of a pseudo-bulk delta file from its noise
    column (``options.noise_key``), without which it has none.
    """
    runners = runners or {}
    unknown = [m for m in methods if m not in METHODS and m not in runners]
    if unknown:
        raise InputError(f"methods={unknown[0]!r}: unknown method; expected some of {', '.join(METHODS)}")
    if shuffles < 0:
        raise InputError(f"shuffles={shuffles}: expected 0 (no control) or more permutations, e.g. 5")
    if strong is not None:
        read_obs_column(data_path, strong.key)  # a missing or non-numeric column fails before any run
    if options.noise_key is not None:
        read_obs_column(data_path, options.noise_key, parameter="noise_key")
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    data_path = str(Path(data_path).resolve())
    # Baselines share one process per seed (they fit in well under a second); every other method has its own.
    light = [m for m in methods if m in LIGHT_METHODS]
    groups = [[m] for m in methods if m not in LIGHT_METHODS] + ([light] if light else [])
    jobs = [(s, g, seed) for s in set_names for seed in seeds for g in groups]
    runs: dict[tuple[str, str], list[dict]] = {}
    for set_name, group, seed in tqdm(jobs, desc="benchmark runs", unit="run"):
        spec = {
            "data": data_path,
            "options": options.to_json(),
            "db": str(Path(db).resolve()),
            "set": set_name,
            "methods": {m: runners.get(m, DEFAULT_RUNNER) for m in group},
            "split": split,
            "seed": seed,
            "test_ratio": test_ratio,
            "val_ratio": val_ratio,
            "config": config or {},
            "shuffles": shuffles,
            "ceiling": group is groups[-1],
            "strong": strong.rule() if strong is not None else None,
        }
        for run in _spawn(spec):
            log.info(
                "%s %s seed %d: NormMSE %s, %.1f s, %.0f MiB",
                set_name,
                run["method"],
                seed,
                _f(run["overall"]["normmse"]["mean"]),
                run["fit_seconds"],
                run["peak_rss_mib"],
            )
            write_json_atomic(out / "runs" / f"{set_name}_{run['method']}_seed{seed}.json", run, indent=1)
            runs.setdefault((set_name, run["method"]), []).append(run)
    first = next(iter(runs.values()))[0]
    signal_metric = "pearson_delta_top20" if first["is_delta"] else "normmse"
    results = [MethodResult.pool(r, signal_metric=signal_metric) for r in runs.values()]
    _add_gaps(results)
    notes = []
    if not any(r.method == CEILING for r in results):
        notes.append(
            "no noise ceiling: pseudo-bulk deltas keep no per-cell variance; name a column of each row's "
            "signal-to-noise ratio with --noise-key (e.g. signal_to_noise) for one"
        )
    table = format_table(results, signal_metric=signal_metric, notes=notes)
    _write_outputs(out, results, data_path, options, db)
    write_text_atomic(out / "table.txt", table + "\n")
    return Benchmark(table, results)


def _write_outputs(out: Path, results: list[MethodResult], data_path: str, options: DataOptions, db) -> None:
    from scouter_local.data import load_embeddings, prepare_data
    from scouter_local.plotting import group_grid, save_figure, signal_bars, top20_panel

    # the strong flag and value columns come last, and only when the strong group was asked for
    extra = [STRONG, "strong_value"] if any(STRONG in r.evaluation.conditions for r in results) else []
    write_csv_atomic(
        out / "conditions.csv",
        ["set", "method", "seed", "condition", "subgroup", *METRICS, *extra],
        (
            [
                r.set,
                r.method,
                row["seed"],
                row["condition"],
                row["subgroup"],
                *[None if pd.isna(row[m]) else row[m] for m in METRICS],
                *[row.get(k) for k in extra],
            ]
            for r in results
            for row in r.evaluation.conditions.to_dict("records")
        ),
    )
    write_csv_atomic(
        out / "summary.csv",
        [
            "set",
            "method",
            "group",
            "n",
            *[f"{m}_{s}" for m in METRICS for s in ("mean", "median")],
            "fit_seconds_mean",
            "peak_rss_mib_max",
            "normmse_seed_sd",
        ],
        (
            [
                r.set,
                r.method,
                group,
                int(row["n"]),
                *[None if pd.isna(row[f"{m}_{s}"]) else row[f"{m}_{s}"] for m in METRICS for s in ("mean", "median")],
                float(np.mean([x["fit_seconds"] for x in r.runs])),
                max(x["peak_rss_mib"] for x in r.runs),
                _seed_sd(r.seed_means("normmse")) if group == "overall" else None,
            ]
            for r in results
            for group, row in r.evaluation.summary.iterrows()
        ),
    )
    write_json_atomic(out / "summary.json", [r.to_json() for r in results], indent=1)
    for set_name in dict.fromkeys(r.set for r in results):
        of_set = {r.method: r for r in results if r.set == set_name}
        for metric, suffix in (("normmse", ""), ("pearson_delta_top20", "_pearson_delta_top20")):
            ax = group_grid(
                {m: r.evaluation for m, r in of_set.items()}, metric=metric, title=f"{set_name}: mean {metric} by group"
            )
            save_figure(ax.figure, out / f"subgroups_{set_name}{suffix}.png")
        tested = [
            {"set": r.set, "method": r.method, **s}
            for r in of_set.values()
            for b, s in r.signal.items()
            if b == "overall"
        ]
        if tested:
            ax = signal_bars(pd.DataFrame(tested), title=f"{set_name}: real vs shuffled embeddings")
            save_figure(ax.figure, out / f"signal_{set_name}.png")
        predicted = {m: r.runs[0]["predictions"] for m, r in of_set.items() if r.runs[0]["predictions"]}
        if predicted:
            seed = next(iter(of_set.values())).runs[0]["seed"]
            data = prepare_data(data_path, options, db, load_embeddings(db, set_name))
            conditions = list(next(iter(predicted.values())))[:4]
            fig = top20_panel(
                data, conditions, {m: {c: np.asarray(p[c]) for c in conditions} for m, p in predicted.items()}
            )
            save_figure(fig, out / f"top20_{set_name}_seed{seed}.png")


def main(argv: list[str]) -> None:
    """Child entry point: run one spec, print its result as one JSON line."""
    from scouter_local.runtime import settings

    settings.apply_threads()
    result = run_one(json.loads(argv[0]))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
