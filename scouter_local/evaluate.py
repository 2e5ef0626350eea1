"""Metrics as published (Scouter/GEARS), per condition and summarised overall and by subgroup; JSON, CSV, plots.

On each condition, over its top-20 non-dropout DE genes (perturbed genes excluded), the mean predicted profile is
compared with the mean observed one: ``normmse`` = MSE(obs, pred) / MSE(obs, ctrl); ``pearson_delta_top20`` and
``pearson_delta_all`` = Pearson(obs − ctrl, pred − ctrl) on those genes / on all genes; ``direction_top20`` =
share of top-20 genes whose predicted change has the observed sign.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from gene_corpus.atomic import atomic_path, write_csv_atomic, write_json_atomic
from gene_corpus.errors import InputError
from scouter_local.data import SUBGROUPS, DataOptions, PerturbationData, Split, load_embeddings, prepare_data, subgroup
from scouter_local.model import load_model, read_manifest, train_model
from scouter_local.report import pyplot, save_figure

METRICS = ("normmse", "pearson_delta_top20", "pearson_delta_all", "direction_top20")
#: Name of the extra subgroup of :class:`StrongTargets` (beside :data:`~scouter_local.data.SUBGROUPS`).
STRONG = "strong"


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant or has fewer than 2 values."""
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def condition_metrics(observed: np.ndarray, predicted: np.ndarray, control: np.ndarray,
                      top: np.ndarray) -> dict[str, float]:
    """Metrics of one condition.

    Parameters
    ----------
    observed, predicted, control
        ``(n_genes,)`` mean observed, mean predicted and mean control profiles (control = 0 for delta data).
    top
        Indices of the condition's top-20 DE genes.
    """
    o, p, c = observed[top], predicted[top], control[top]
    base = float(np.mean((o - c) ** 2))
    return {
        "normmse": float(np.mean((o - p) ** 2)) / base if base > 0 else float("nan"),
        "pearson_delta_top20": _pearson(o - c, p - c),
        "pearson_delta_all": _pearson(observed - control, predicted - control),
        "direction_top20": float(np.mean(np.sign(p - c) == np.sign(o - c))) if len(top) else float("nan"),
    }


def _summary(rows: Sequence[dict]) -> dict[str, dict[str, float | None]]:
    out = {}
    for m in METRICS:
        vals = np.array([r[m] for r in rows if r[m] is not None and not math.isnan(r[m])], dtype=float)
        out[m] = {"mean": float(vals.mean()) if len(vals) else None,
                  "median": float(np.median(vals)) if len(vals) else None}
    return out


def summarize(rows: Sequence[dict], *, method: str) -> dict:
    """Per-condition rows → ``{"method", "n_conditions", "overall", "subgroups", "conditions"}``: mean and median of
    each metric overall and per subgroup (undefined values left out).

    Rows carrying a ``"strong"`` flag (see :class:`StrongTargets`) add the subgroup ``strong``: the rows whose flag
    is true, reported even when there are none (``n`` 0), since it was asked for.
    """
    groups = {}
    for g in SUBGROUPS:
        sel = [r for r in rows if r["subgroup"] == g]
        if sel:
            groups[g] = {"n": len(sel), **_summary(sel)}
    if any(STRONG in r for r in rows):
        sel = [r for r in rows if r.get(STRONG)]
        groups[STRONG] = {"n": len(sel), **_summary(sel)}
    return {"method": method, "n_conditions": len(rows), "overall": _summary(rows), "subgroups": groups,
            "conditions": list(rows)}


@dataclass(frozen=True)
class StrongTargets:
    """The extra subgroup ``strong``: conditions whose mean ``obs[key]`` exceeds ``above``.

    E.g. ``key="signal_to_noise", above=1.1`` on the Replogle file: targets with a detectable effect.

    Attributes
    ----------
    key
        Numeric ``obs`` column of the perturbation file.
    above
        Threshold; a condition is strong when its value is strictly greater.
    values
        Condition (as spelled in the prepared data) → mean ``obs[key]`` over its rows (see
        :func:`obs_condition_values`).
    """

    key: str
    above: float
    values: Mapping[str, float] = field(default_factory=dict)

    def rule(self) -> dict:
        """``{"key", "above"}``, recorded beside the results."""
        return {"key": self.key, "above": self.above}

    def row(self, condition: str) -> dict:
        """``{"strong": bool, "strong_value": float | None}`` of one condition (no value: not strong)."""
        value = self.values.get(condition)
        if value is None or math.isnan(value):
            return {STRONG: False, "strong_value": None}
        return {STRONG: bool(value > self.above), "strong_value": float(value)}


def read_obs_column(path: str | os.PathLike, key: str) -> pd.DataFrame:
    """``obs`` of the h5ad ``path`` (read backed: no expression loaded), checked to hold the numeric column ``key``."""
    import anndata as ad

    path = Path(path)
    try:
        backed = ad.read_h5ad(path, backed="r")
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{path}: not a readable h5ad file ({exc})") from exc
    obs = backed.obs
    backed.file.close()
    if key not in obs:
        raise InputError(f"{path}: --strong-key {key!r} not in obs (columns: {', '.join(map(str, obs))})")
    if not pd.api.types.is_numeric_dtype(obs[key]) or pd.api.types.is_bool_dtype(obs[key]):
        raise InputError(f"{path}: obs[{key!r}] is not numeric ({obs[key].dtype}); --strong-key needs a number "
                         "per row, e.g. signal_to_noise")
    return obs


def obs_condition_values(path: str | os.PathLike, key: str, data: PerturbationData) -> dict[str, float]:
    """Mean of the numeric column ``obs[key]`` of ``path`` per perturbed condition of ``data``.

    Only ``obs`` is read (backed). ``data.rows`` (the file rows kept by :func:`prepare_data`) ties each row to its
    condition as ``data`` spells it, after subsetting and renaming by the resolver (old symbols, Ensembl ids).

    Returns
    -------
    Perturbed condition → mean of its non-missing values (NaN when all are missing).
    """
    obs = read_obs_column(path, key)
    if len(data.rows) and int(data.rows.max()) >= len(obs):
        raise InputError(f"{path}: has {len(obs)} rows but the data read from {data.source.get('path')} has row "
                         f"{int(data.rows.max())}; pass the same file")
    values = pd.Series(obs[key].to_numpy(dtype=np.float64, na_value=np.nan)[data.rows])
    means = values.groupby(np.asarray(data.conditions, dtype=object), sort=False).mean()
    return {c: float(means[c]) for c in data.perturbations}


def evaluate_predictions(data: PerturbationData, predictions: Mapping[str, np.ndarray],
                         train_conditions: Sequence[str], *, method: str,
                         strong: StrongTargets | None = None) -> dict:
    """The ``evaluate`` JSON object of one method.

    Parameters
    ----------
    data
        Observed data holding every evaluated condition and the control cells.
    predictions
        Condition → ``(n_genes,)`` mean predicted profile.
    train_conditions
        Conditions the method was trained on (they define the subgroups).
    method
        Method name recorded in the result.
    strong
        Adds the subgroup ``strong``, each condition's ``strong`` flag and ``strong_value``, and ``strong_rule``.

    Returns
    -------
    ``{"method", "n_conditions", "overall": {METRIC: {"mean", "median"}}, "subgroups": {SUBGROUP: {"n", METRIC: …}},
    "conditions": [{"condition", "subgroup", METRIC: value}]}``; undefined values (a constant profile) are ``None``.
    """
    control = data.control_mean()
    rows = []
    for cond, pred in predictions.items():
        m = condition_metrics(data.condition_mean(cond), np.asarray(pred), control, data.de_genes[cond])
        rows.append({"condition": cond, "subgroup": subgroup(cond, train_conditions),
                     **(strong.row(cond) if strong is not None else {}),
                     **{k: (None if math.isnan(v) else v) for k, v in m.items()}})
    result = summarize(rows, method=method)
    if strong is not None:
        result["strong_rule"] = strong.rule()
    return result


def write_report(result: dict, json_path: str | os.PathLike) -> tuple[Path, Path]:
    """Write the result as JSON and its per-condition table as CSV beside it (same stem, ``.csv``)."""
    json_path = Path(json_path)
    csv_path = json_path.with_suffix(".csv")
    write_json_atomic(json_path, result)
    write_csv_atomic(csv_path, ["method", "condition", "subgroup", *METRICS],
                     ([result["method"], r["condition"], r["subgroup"], *[r[m] for m in METRICS]]
                      for r in result["conditions"]))
    return json_path, csv_path


# ---------------------------------------------------------------------------------------------- plots


def plot_top20(data: PerturbationData, condition: str, predictions: Mapping[str, np.ndarray],
               path: str | os.PathLike) -> Path:
    """Bar plot of observed and predicted changes (vs control) on the condition's top-20 DE genes, one bar
    group per gene and one bar per method (observed first), as Scouter's barplot shows them."""
    plt = pyplot()

    top = data.de_genes[condition]
    control = data.control_mean()
    series = {"observed": data.condition_mean(condition)[top] - control[top]}
    series.update({m: np.asarray(p)[top] - control[top] for m, p in predictions.items()})
    width = 0.8 / len(series)
    x = np.arange(len(top))
    fig, ax = plt.subplots(figsize=(max(8, len(top) * 0.6), 4.5))
    for i, (name, vals) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, label=name,
               color="black" if name == "observed" else None)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(x, [data.genes[i] for i in top], rotation=90)
    ax.set_ylabel("change from control")
    ax.set_title(f"{condition}: top-{len(top)} DE genes")
    ax.legend(fontsize=8, ncol=min(len(series), 4))
    fig.tight_layout()
    return save_figure(fig, Path(path), dpi=120)


def plot_subgroups(results: Sequence[dict], path: str | os.PathLike, *, metric: str = "normmse") -> Path:
    """Mean ``metric`` per subgroup (and overall), one bar per method; the no-change level is marked for NormMSE."""
    plt = pyplot()

    groups = ["overall"] + [g for g in (*SUBGROUPS, STRONG) if any(g in r["subgroups"] for r in results)]
    width = 0.8 / max(len(results), 1)
    x = np.arange(len(groups))
    fig, ax = plt.subplots(figsize=(max(6, len(groups) * 1.6), 4))
    for i, r in enumerate(results):
        vals = [r["overall"][metric]["mean"] if g == "overall" else r["subgroups"].get(g, {}).get(metric, {}).get("mean")
                for g in groups]
        ax.bar(x + (i - (len(results) - 1) / 2) * width, [np.nan if v is None else v for v in vals], width,
               label=r["method"])
    if metric == "normmse":
        ax.axhline(1.0, color="grey", linestyle="--", linewidth=0.8)
    ns = [sum(1 for _ in results[0]["conditions"]) if g == "overall" else results[0]["subgroups"].get(g, {}).get("n", 0)
          for g in groups] if results else []
    ax.set_xticks(x, [f"{g}\n(n={n})" for g, n in zip(groups, ns)])
    ax.set_ylabel(f"mean {metric}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, Path(path), dpi=120)


# ---------------------------------------------------------------------------------------------- model folders

BASELINES = ("no_change", "train_mean", "additive", "ridge", "knn")
#: At most this many per-condition top-20 plots are drawn by :func:`evaluate_model`.
MAX_CONDITION_PLOTS = 12


def evaluate_model(model_dir: str | os.PathLike, *, data_path: str | os.PathLike | None = None,
                   db: str | os.PathLike | None = None, plots: str | os.PathLike | None = None,
                   baselines: Sequence[str] = BASELINES) -> dict:
    """Evaluate a saved model: on its split's test conditions, or on every condition of another file.

    Parameters
    ----------
    model_dir
        Model folder written by ``train``.
    data_path
        File to evaluate on, read with the model's own data options; ``None`` (or the training file itself)
        evaluates the test conditions of the saved split.
    db
        Corpus database with the embedding set; default: the one recorded at training.
    plots
        Folder for the top-20 bar plots (model and baselines side by side) and the per-subgroup summary.
    baselines
        Baselines fitted on the model's training conditions and reported under ``"baselines"``.

    Returns
    -------
    The ``evaluate`` JSON object (see :func:`evaluate_predictions`) plus ``model``, ``data``, ``excluded`` and
    ``baselines`` (method → the same object without ``conditions``).
    """
    manifest = read_manifest(model_dir)
    db = db or manifest["db"]
    embeddings = load_embeddings(db, manifest["embedding"]["name"])
    options = DataOptions.from_json(manifest["data"]["options"])
    train_path = Path(manifest["data"]["path"])
    own = data_path is None or Path(data_path).resolve() == train_path
    data = prepare_data(train_path if own else data_path, options, db, embeddings)
    predictor = load_model(model_dir, embeddings, genes=data.genes)
    split = Split.from_json(manifest["split"])
    if own:
        if not split.test:
            raise InputError(f"{model_dir}: trained with --split {split.kind}, so there are no test conditions; "
                             "pass --data FILE to evaluate on another file")
        missing = [c for c in split.test if c not in set(data.perturbations)]
        if missing:
            raise InputError(f"{train_path}: test condition {missing[0]!r} of the saved split is not in the data")
        conditions = list(split.test)
    else:
        conditions = data.perturbations
    predictions = {"model": dict(zip(conditions, predictor.predict(conditions)))}
    result = evaluate_predictions(data, predictions["model"], predictor.train_conditions_, method=manifest["method"])
    result.update(model=str(model_dir), data=str(train_path if own else data_path), excluded=data.excluded)

    base_results = []
    if baselines:
        train_data = data if own else prepare_data(train_path, options, db, embeddings)
        for name in baselines:
            fitted = train_model(train_data, embeddings, split, method=name, seed=manifest["config"].get("seed", 24))
            predictions[name] = dict(zip(conditions, fitted.predict(conditions)))
            base_results.append(evaluate_predictions(data, predictions[name], fitted.train_conditions_, method=name))
        result["baselines"] = {r["method"]: {k: v for k, v in r.items() if k != "conditions"} for r in base_results}

    if plots is not None:
        plots = Path(plots)
        for cond in conditions[:MAX_CONDITION_PLOTS]:
            plot_top20(data, cond, {(manifest["method"] if m == "model" else m): p[cond] for m, p in predictions.items()},
                       plots / f"top20_{cond.replace('+', '_')}.png")
        plot_subgroups([result, *base_results], plots / "subgroups_normmse.png")
    return result


def write_predictions(path: str | os.PathLike, conditions: Sequence[str], values: np.ndarray,
                      genes: Sequence[str]) -> Path:
    """Write ``(n_conditions, n_genes)`` predictions as CSV (rows: conditions) or h5ad (``obs['condition']``)."""
    path = Path(path)
    if path.suffix not in (".h5ad", ".csv", ".tsv"):
        raise InputError(f"--out {path}: expected a .csv, .tsv or .h5ad file")
    with atomic_path(path) as tmp:
        if path.suffix == ".h5ad":
            import anndata as ad

            adata = ad.AnnData(X=np.asarray(values, dtype=np.float32),
                               obs=pd.DataFrame({"condition": list(conditions)}, index=list(conditions)),
                               var=pd.DataFrame(index=pd.Index(list(genes), name="gene_name")))
            adata.var_names_make_unique()
            adata.write_h5ad(tmp)
        else:
            pd.DataFrame(values, index=pd.Index(conditions, name="condition"), columns=list(genes)).to_csv(
                tmp, sep="\t" if path.suffix == ".tsv" else ",")
    return path
