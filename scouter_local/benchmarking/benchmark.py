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

Effect detection: where the data have an effect label (the ``strong`` column and threshold, or the E-test of
single cells), each seed's light-methods process also fits the effect model on the training single genes (and on
each shuffled copy) and the well-studied baseline, and predicts the test single genes
(:mod:`~scouter_local.benchmarking.detection`): each row of the set carries the pooled ``detection`` block, a row
``well_studied`` carries the baseline's, the table shows both and ``detection_<set>.png`` their precision among the
top N and their calibration.

"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from gene_corpus.checks import names_of
from gene_corpus.errors import InputError
from gene_corpus.files import write_csv_atomic, write_json_atomic, write_text_atomic
from scouter_local.benchmarking.detection import DETECTION, DetectionResult, detection_figure
from scouter_local.benchmarking.results import MethodResult, add_gaps
from scouter_local.benchmarking.runner import DEFAULT_RUNNER, spawn_run
from scouter_local.benchmarking.tables import format_table
from scouter_local.data.link import load_embeddings
from scouter_local.data.options import DataOptions
from scouter_local.data.splits import MAX_SEED, check_seed
from scouter_local.evaluation.metrics import METRICS, seed_sd
from scouter_local.evaluation.results import CEILING, STRONG
from scouter_local.evaluation.strong import StrongTargets, read_obs_column
from scouter_local.predictors import METHODS, method_names
from scouter_local.reporting.document import format_value

log = logging.getLogger(__name__)


#: Shuffled-embedding copies of each set per run, by default.
DEFAULT_SHUFFLES = 5


#: Most seeds one benchmark accepts (each seed fits every method again).
MAX_SEEDS = 1000


def parse_seeds(text: str) -> list[int]:
    """``"1-5"`` → ``[1, 2, 3, 4, 5]``; ``"1,3,7"`` → ``[1, 3, 7]`` (checked by :func:`check_seeds`)."""
    try:
        if "-" in text.strip("-"):
            lo, hi = (int(t) for t in text.split("-", 1))
            if lo > hi:
                raise InputError(f"seeds={text!r}: the range is empty; write the smaller seed first, e.g. {hi}-{lo}")
            if hi - lo >= MAX_SEEDS:
                raise InputError(f"seeds={text!r}: {hi - lo + 1} seeds; at most {MAX_SEEDS} are accepted, e.g. 1-5")
            return check_seeds(range(lo, hi + 1), text)
        return check_seeds([int(s) for s in text.split(",") if s.strip()], text)
    except ValueError as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"seeds={text!r}: expected a range '1-5' or a list '1,3,7'") from exc


def check_seeds(seeds: Sequence[int], text: str | None = None) -> list[int]:
    """``seeds`` as a list if it holds 1 to :data:`MAX_SEEDS` distinct seeds from 0 to 2**32 - 1; else an
    :class:`InputError` (``text``: the seeds as the user wrote them, for the message)."""
    if isinstance(seeds, (str, int)):
        raise InputError(f"seeds={seeds!r}: expected a list of seeds, e.g. [1, 2, 3]")
    seeds = list(seeds)
    shown = text if text is not None else ",".join(map(str, seeds))
    if not seeds or len(seeds) > MAX_SEEDS:
        raise InputError(f"seeds={shown!r}: expected 1 to {MAX_SEEDS} seeds, e.g. 1-5")
    for seed in seeds:
        try:
            check_seed(seed)
        except InputError:
            raise InputError(f"seeds={shown!r}: {seed!r} is not a seed; seeds are whole numbers from 0 to {MAX_SEED}")
    if len(set(seeds)) < len(seeds):
        raise InputError(f"seeds={shown!r}: a seed is named twice; name each once, e.g. 1,3,7")
    return seeds


@dataclasses.dataclass
class Benchmark:
    """What :func:`run_benchmark` measured: the printed ``table``, one :class:`MethodResult` per (set, method) and
    one :class:`DetectionResult` per set whose data have an effect label."""

    table: str
    results: list[MethodResult]
    detection: list[DetectionResult] = dataclasses.field(default_factory=list)

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
    detection: bool = True,
    effect_options: dict | None = None,
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
    detection
        Effect detection where the data have an effect label (``strong``, or the E-test of single cells); the
        effect model is also fitted on the ``shuffles`` copies.
    effect_options
        Options of the effect model (:class:`~scouter_local.predictors.effect.EffectModel`), e.g.
        ``{"stacking": "never"}``.

    The noise ceiling of single cells comes from their variances; that of a pseudo-bulk delta file from its noise
    column (``options.noise_key``), without which it has none.
    """
    runners = runners or {}
    set_names, methods = names_of(set_names, "set_names"), names_of(methods, "methods")
    seeds = check_seeds(seeds)
    _check_inputs(
        data_path,
        options,
        db=db,
        set_names=set_names,
        methods=methods,
        runners=runners,
        strong=strong,
        shuffles=shuffles,
    )
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    data_path = str(Path(data_path).resolve())
    # Light methods share one process per seed (they fit in about a second); every other method has its own.
    shared = set(method_names(light=True))
    light = [m for m in methods if m in shared]
    groups = [[m] for m in methods if m not in shared] + ([light] if light else [])
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
            "detection": detection and group is groups[-1],
            "effect_options": dict(effect_options or {}),
            "strong": strong.rule() if strong is not None else None,
        }
        for run in spawn_run(spec):
            _save_run(out, run)
            runs.setdefault((set_name, run["method"]), []).append(run)
    detected = [DetectionResult.pool(r) for (_, method), r in runs.items() if method == DETECTION]
    results, signal_metric = _pool({k: r for k, r in runs.items() if k[1] != DETECTION})
    for d in detected:
        for r in results:
            if r.set == d.set and r.method != CEILING:
                r.detection = d.model
    table = format_table(results, signal_metric=signal_metric, notes=_notes(results), detection=detected)
    _write_outputs(out, results, detected, data_path, options, db)
    write_text_atomic(out / "table.txt", table + "\n")
    return Benchmark(table, results, detected)


def _check_inputs(
    data_path: str | os.PathLike,
    options: DataOptions,
    *,
    db: str | os.PathLike,
    set_names: Sequence[str],
    methods: Sequence[str],
    runners: dict[str, str],
    strong: StrongTargets | None,
    shuffles: int,
) -> None:
    """Fail before any run or folder: no set, an unknown or unfinished set, an unknown method, a negative
    ``shuffles``, a missing or non-numeric strong or noise column."""
    if not set_names:
        raise InputError("set_names names no embedding set; pass set_names=NAME")
    for set_name in dict.fromkeys(set_names):
        load_embeddings(db, set_name)
    unknown = [m for m in methods if m not in METHODS and m not in runners]
    if unknown:
        raise InputError(f"methods={unknown[0]!r}: unknown method; expected some of {', '.join(METHODS)}")
    if shuffles < 0:
        raise InputError(f"shuffles={shuffles}: expected 0 (no control) or more permutations, e.g. 5")
    if strong is not None:
        read_obs_column(data_path, strong.key)  # a missing or non-numeric column fails before any run
    if options.noise_key is not None:
        read_obs_column(data_path, options.noise_key, parameter="noise_key")


def _save_run(out: Path, run: dict) -> None:
    """Log one run's headline and write it to ``out/runs/<set>_<method>_seed<seed>.json``."""
    headline = f"NormMSE {format_value(run['overall']['normmse']['mean'])}" if "overall" in run else "effect detection"
    log.info(
        "%s %s seed %d: %s, %.1f s, %.0f MiB",
        run["set"],
        run["method"],
        run["seed"],
        headline,
        run["fit_seconds"],
        run["peak_rss_mib"],
    )
    write_json_atomic(out / "runs" / f"{run['set']}_{run['method']}_seed{run['seed']}.json", run, indent=1)


def _pool(runs: dict[tuple[str, str], list[dict]]) -> tuple[list[MethodResult], str]:
    """Each (set, method)'s runs pooled over the seeds, with the gap each closes to the ceiling.

    Returns
    -------
    The results and the metric of the signal test: Pearson Δ top-20 on pseudo-bulk deltas, else NormMSE.
    """
    first = next(iter(runs.values()))[0]
    signal_metric = "pearson_delta_top20" if first["is_delta"] else "normmse"
    results = [MethodResult.pool(r, signal_metric=signal_metric) for r in runs.values()]
    add_gaps(results)
    return results, signal_metric


def _notes(results: Sequence[MethodResult]) -> list[str]:
    """Lines under the table: why there is no noise ceiling, where there is none."""
    if any(r.method == CEILING for r in results):
        return []
    return [
        "no noise ceiling: pseudo-bulk deltas keep no per-cell variance; name a column of each row's "
        "signal-to-noise ratio with --noise-key (e.g. signal_to_noise) for one"
    ]


def _write_outputs(
    out: Path,
    results: list[MethodResult],
    detected: list[DetectionResult],
    data_path: str,
    options: DataOptions,
    db,
) -> None:
    """``conditions.csv``, ``summary.csv``, ``summary.json`` (the well-studied rows last) and each set's plots
    (``detection_<set>.png`` where it has a detection block) into ``out``."""
    _write_conditions(out / "conditions.csv", results)
    _write_summary(out / "summary.csv", results)
    write_json_atomic(out / "summary.json", [r.to_json() for r in results] + [d.to_json() for d in detected], indent=1)
    for set_name in dict.fromkeys(r.set for r in results):
        _plot_set(out, {r.method: r for r in results if r.set == set_name}, data_path, options, db)
    for d in detected:
        if d.model is not None:
            detection_figure([d], out / f"detection_{d.set}.png")


def _write_conditions(path: Path, results: list[MethodResult]) -> None:
    """One row per (set, method, seed, test condition) with its metrics (and the strong flag and value when the
    strong group was asked for: these two columns come last)."""
    extra = [STRONG, "strong_value"] if any(STRONG in r.evaluation.conditions for r in results) else []
    write_csv_atomic(
        path,
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


def _write_summary(path: Path, results: list[MethodResult]) -> None:
    """One row per (set, method, group): metric means and medians, mean fit seconds, peak memory and the spread of
    the per-seed mean NormMSE."""
    write_csv_atomic(
        path,
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
                seed_sd(r.seed_means("normmse")) if group == "overall" else None,
            ]
            for r in results
            for group, row in r.evaluation.summary.iterrows()
        ),
    )


def _plot_set(out: Path, of_set: dict[str, MethodResult], data_path: str, options: DataOptions, db) -> None:
    """One set's plots: means by group (NormMSE, Pearson Δ top-20), real vs shuffled embeddings, and the first
    seed's top-20 DE genes of a few test conditions."""
    from scouter_local.data.link import prepare_data
    from scouter_local.reporting.plots import group_grid, save_figure, signal_bars, top20_panel

    set_name = next(iter(of_set.values())).set
    for metric, suffix in (("normmse", ""), ("pearson_delta_top20", "_pearson_delta_top20")):
        ax = group_grid(
            {m: r.evaluation for m, r in of_set.items()}, metric=metric, title=f"{set_name}: mean {metric} by group"
        )
        save_figure(ax.figure, out / f"subgroups_{set_name}{suffix}.png")
    tested = [
        {"set": r.set, "method": r.method, **s} for r in of_set.values() for b, s in r.signal.items() if b == "overall"
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
