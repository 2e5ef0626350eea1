"""One benchmark run in its own process: read the data, draw the split, fit each method (and its shuffled-embedding
controls), score the test conditions; ``python -m scouter_local.benchmarking SPEC_JSON`` prints the result.

A runner is ``module:function`` (default :func:`fit_registry_method`), so another implementation can be measured
the same way on the same data, split and embeddings.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from gene_corpus.errors import InputError
from scouter_local.benchmarking.detection import run_detection, shuffle_seed
from scouter_local.data.options import DataOptions
from scouter_local.data.perturbation import PerturbationData
from scouter_local.data.read import condition_values, read_obs_column
from scouter_local.data.splits import Split
from scouter_local.embedding.sets import EmbeddingSet
from scouter_local.evaluation.ceiling import noise_ceiling
from scouter_local.evaluation.metrics import METRICS
from scouter_local.evaluation.scoring import evaluate_predictions
from scouter_local.evaluation.signal import shuffled_embeddings
from scouter_local.evaluation.strong import StrongTargets
from scouter_local.predictors import method_class
from scouter_local.runtime import own_peak_rss_mib

DEFAULT_RUNNER = "scouter_local.benchmarking.runner:fit_registry_method"


#: Runner of a method: ``(data, embeddings, split, method, config)`` → ``(test predictions, fit seconds,
#: train conditions)``.
Runner = Callable[[PerturbationData, EmbeddingSet, Split, str, dict], tuple[dict[str, np.ndarray], float, list[str]]]


def fit_registry_method(
    data: PerturbationData, embeddings: EmbeddingSet, split: Split, method: str, config: dict
) -> tuple[dict[str, np.ndarray], float, list[str]]:
    """Fit a :data:`~scouter_local.predictors.METHODS` entry on the split; return test predictions, fit seconds and
    the training conditions."""
    from scouter_local.predictors import method_params
    from scouter_local.predictors.training import train

    params = method_params(method)
    t0 = time.perf_counter()
    options = {k: v for k, v in config.items() if k in params}
    predictor = train(data, embeddings, method=method, split=split, effect=None, **options)
    seconds = time.perf_counter() - t0
    return dict(zip(split.test, predictor.predict(split.test))), seconds, predictor.train_conditions_


def _load_runner(spec: str) -> Runner:
    module, _, func = spec.partition(":")
    return getattr(importlib.import_module(module), func)


def run_one(spec: dict) -> list[dict]:
    """Runs in this process: read data, draw the split, then per method fit, predict the test conditions, evaluate
    (and the shuffled controls of embedding-using methods); with ``spec["ceiling"]`` also the noise ceiling.

    ``spec`` keys: ``data``, ``options``, ``db``, ``set``, ``methods`` (name → runner ``module:function``),
    ``split``, ``seed``, ``test_ratio``, ``val_ratio``, ``config``, ``shuffles``, ``ceiling``, optional ``strong``
    (``{"key", "above"}``), ``detection`` (add the effect-detection entry where the data have an effect label) and
    ``effect_options`` (of the effect model).
    The peak memory of each entry is that of this process.
    """
    from scouter_local.data.link import load_embeddings, prepare_data
    from scouter_local.data.splits import make_split

    embeddings = load_embeddings(spec["db"], spec["set"])
    data = prepare_data(spec["data"], DataOptions.from_json(spec["options"]), spec["db"], embeddings)
    strong = obs = None
    if spec.get("strong"):  # its column is read once, for the strong group and the effect label
        key = spec["strong"]["key"]
        obs = read_obs_column(spec["data"], key)
        strong = StrongTargets(key, spec["strong"]["above"], condition_values(obs, key, data, where=str(spec["data"])))
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
        train_mean = data.subset(train_conditions).mean_profile()
        result = evaluate_predictions(
            data, predictions, train_conditions, method=method, strong=strong, train_mean_profile=train_mean
        )
        entry = {
            **result.to_dict(),
            "set": spec["set"],
            "seed": spec["seed"],
            "split": split.to_json(),
            "is_delta": data.is_delta,
            "fit_seconds": seconds,
            "predictions": {c: np.asarray(p).tolist() for c, p in predictions.items()},
        }
        if runner_name != DEFAULT_RUNNER or method_class(method).uses_embeddings:
            entry["shuffled"] = []
            for k in range(spec.get("shuffles", 0)):
                control = shuffled_embeddings(embeddings, data, seed=shuffle_seed(spec["seed"], k))
                shuffled, _, _ = runner(data, control, split, method, config)
                scored = evaluate_predictions(
                    data, shuffled, train_conditions, method=method, train_mean_profile=train_mean
                )
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
    if spec.get("detection"):
        results += _detection(spec, data, embeddings, split, obs)
    rss = own_peak_rss_mib()
    for r in results:
        r["peak_rss_mib"] = rss
    return results


def _detection(
    spec: dict, data: PerturbationData, embeddings: EmbeddingSet, split: Split, obs: pd.DataFrame | None
) -> list[dict]:
    """The run's effect-detection entry (:func:`~scouter_local.benchmarking.detection.run_detection`), or none when
    the data have no effect label (pseudo-bulk data without a ``strong`` column; ``obs``: the file's, holding it)."""
    from scouter_local.data.effect import effect_label

    rule = spec.get("strong") or {}
    label = effect_label(data, strong_key=rule.get("key"), strong_above=rule.get("above"), obs=obs)
    if label is None:
        return []
    entry = run_detection(
        data,
        embeddings,
        split,
        label,
        seed=spec["seed"],
        shuffles=spec.get("shuffles", 0),
        **spec.get("effect_options", {}),
    )
    return [{**entry, "is_delta": data.is_delta}]


def spawn_run(spec: dict) -> list[dict]:
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


def main(argv: list[str]) -> None:
    """Child entry point: run one spec, print its result as one JSON line."""
    from scouter_local.runtime import settings

    settings.apply_threads()
    result = run_one(json.loads(argv[0]))
    sys.stdout.write(json.dumps(result) + "\n")
