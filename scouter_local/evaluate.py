"""Metrics as published (Scouter/GEARS), per condition and summarised overall and by subgroup; JSON, CSV, plots.

On each condition, over its top-20 non-dropout DE genes (perturbed genes excluded), the mean predicted profile is
compared with the mean observed one: ``normmse`` = MSE(obs, pred) / MSE(obs, ctrl); ``pearson_delta_top20`` and
``pearson_delta_all`` = Pearson(obs − ctrl, pred − ctrl) on those genes / on all genes; ``direction_top20`` =
share of top-20 genes whose predicted change has the observed sign.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from gene_corpus.errors import InputError
from scouter_local.data import SUBGROUPS, DataOptions, PerturbationData, Split, load_embeddings, prepare_data, subgroup
from scouter_local.model import load_model, read_manifest, train_model

METRICS = ("normmse", "pearson_delta_top20", "pearson_delta_all", "direction_top20")


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
    each metric overall and per subgroup (undefined values left out)."""
    groups = {}
    for g in SUBGROUPS:
        sel = [r for r in rows if r["subgroup"] == g]
        if sel:
            groups[g] = {"n": len(sel), **_summary(sel)}
    return {"method": method, "n_conditions": len(rows), "overall": _summary(rows), "subgroups": groups,
            "conditions": list(rows)}


def evaluate_predictions(data: PerturbationData, predictions: Mapping[str, np.ndarray],
                         train_conditions: Sequence[str], *, method: str) -> dict:
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
                     **{k: (None if math.isnan(v) else v) for k, v in m.items()}})
    return summarize(rows, method=method)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_report(result: dict, json_path: str | os.PathLike) -> tuple[Path, Path]:
    """Write the result as JSON and its per-condition table as CSV beside it (same stem, ``.csv``)."""
    json_path = Path(json_path)
    csv_path = json_path.with_suffix(".csv")
    _atomic_write(json_path, json.dumps(result, indent=2))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["method", "condition", "subgroup", *METRICS])
    writer.writeheader()
    for row in result["conditions"]:
        writer.writerow({"method": result["method"], **row})
    _atomic_write(csv_path, buf.getvalue())
    return json_path, csv_path


# ---------------------------------------------------------------------------------------------- plots


def plot_top20(data: PerturbationData, condition: str, predictions: Mapping[str, np.ndarray],
               path: str | os.PathLike) -> Path:
    """Bar plot of observed and predicted changes (vs control) on the condition's top-20 DE genes, one bar
    group per gene and one bar per method (observed first), as Scouter's barplot shows them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    return _save_figure(fig, Path(path))


def plot_subgroups(results: Sequence[dict], path: str | os.PathLike, *, metric: str = "normmse") -> Path:
    """Mean ``metric`` per subgroup (and overall), one bar per method; the no-change level is marked for NormMSE."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = ["overall"] + [g for g in SUBGROUPS if any(g in r["subgroups"] for r in results)]
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
    return _save_figure(fig, Path(path))


def _save_figure(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp.{path.name}")
    fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    os.replace(tmp, path)
    return path


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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp.{path.name}")
    if path.suffix == ".h5ad":
        import anndata as ad

        adata = ad.AnnData(X=np.asarray(values, dtype=np.float32),
                           obs=pd.DataFrame({"condition": list(conditions)}, index=list(conditions)),
                           var=pd.DataFrame(index=pd.Index(list(genes), name="gene_name")))
        adata.var_names_make_unique()
        adata.write_h5ad(tmp)
    elif path.suffix in (".csv", ".tsv"):
        pd.DataFrame(values, index=pd.Index(conditions, name="condition"), columns=list(genes)).to_csv(
            tmp, sep="\t" if path.suffix == ".tsv" else ",")
    else:
        raise InputError(f"--out {path}: expected a .csv, .tsv or .h5ad file")
    os.replace(tmp, path)
    return path
