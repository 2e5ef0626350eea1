"""Metrics as published (Scouter/GEARS), per condition and summarised; the noise ceiling; the shuffled control.

On each condition, over its top-20 non-dropout DE genes (perturbed genes excluded), the mean predicted profile is
compared with the mean observed one: ``normmse`` = MSE(obs, pred) / MSE(obs, ctrl); ``pearson_delta_top20`` and
``pearson_delta_all`` = Pearson(obs − ctrl, pred − ctrl) on those genes / on all genes; ``direction_top20`` =
share of top-20 genes whose predicted change has the observed sign.

An :class:`Evaluation` holds one row per condition (a ``pandas.DataFrame``) and summarises it overall and by
subgroup (:attr:`Evaluation.summary`); :meth:`Evaluation.to_dict` is the ``evaluate`` JSON object.
:func:`noise_ceiling` says what a perfect predictor of each condition's true mean would score against its observed
mean; :func:`signal_test` says whether a method on real embeddings beats the same method on row-permuted ones.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gene_corpus.atomic import write_csv_atomic, write_json_atomic
from gene_corpus.errors import InputError
from scouter_local.data import (
    SUBGROUPS,
    DataOptions,
    PerturbationData,
    condition_means,
    numeric_obs_column,
    prepare_data,
    subgroup,
)
from scouter_local.embedding_set import unit_rows

if TYPE_CHECKING:
    import anndata as ad

    from scouter_local.embedding_set import EmbeddingSet
    from scouter_local.predictors.base import Predictor

METRICS = ("normmse", "pearson_delta_top20", "pearson_delta_all", "direction_top20")
#: Metrics where a larger value is better (NormMSE is an error).
HIGHER_IS_BETTER = {"normmse": False, "pearson_delta_top20": True, "pearson_delta_all": True, "direction_top20": True}
#: Name of the extra subgroup of :class:`StrongTargets` (beside :data:`~scouter_local.data.SUBGROUPS`).
STRONG = "strong"
#: Summary groups in display order.
GROUPS = ("overall", *SUBGROUPS, STRONG)
#: Method name of the noise-ceiling entry.
CEILING = "ceiling"


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant or has fewer than 2 values."""
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def condition_metrics(
    observed: np.ndarray, predicted: np.ndarray, control: np.ndarray, top: np.ndarray
) -> dict[str, float]:
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


def _none_if_nan(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


@dataclass
class Evaluation:
    """The scores of one method on some conditions.

    Attributes
    ----------
    method
        Method name (``ceiling`` for :func:`noise_ceiling`).
    conditions
        One row per evaluated condition: ``condition``, ``subgroup``, the :data:`METRICS` (NaN where undefined,
        e.g. a constant profile), and where asked ``seed`` (pooled runs), ``strong`` / ``strong_value``.
    info
        Further JSON keys written by :meth:`to_dict` (``model``, ``data``, ``excluded``, ``strong_rule`` …).
    baselines
        Baselines fitted on the same training conditions, scored on the same conditions (``evaluate`` only).
    predictions
        Condition → ``(n_genes,)`` predicted profile that was scored (not written by :meth:`to_dict`).
    data
        The observed data scored against (not written by :meth:`to_dict`).
    """

    method: str
    conditions: pd.DataFrame
    info: dict = field(default_factory=dict)
    baselines: dict[str, Evaluation] = field(default_factory=dict)
    predictions: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    data: PerturbationData | None = field(default=None, repr=False)

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping], *, method: str, info: dict | None = None) -> Evaluation:
        frame = pd.DataFrame(list(rows), columns=None if rows else ["condition", "subgroup", *METRICS])
        for m in METRICS:
            frame[m] = pd.to_numeric(frame[m], errors="coerce").astype(float)
        return cls(method, frame, dict(info or {}))

    @classmethod
    def from_dict(cls, d: Mapping) -> Evaluation:
        """Rebuild from :meth:`to_dict` (``overall``/``subgroups`` are recomputed from the conditions)."""
        info = {
            k: v
            for k, v in d.items()
            if k not in ("method", "n_conditions", "overall", "subgroups", "conditions", "baselines")
        }
        return cls.from_rows(d["conditions"], method=d["method"], info=info)

    @classmethod
    def pooled(cls, evaluations: Sequence[Evaluation], *, seeds: Sequence[int] | None = None) -> Evaluation:
        """One evaluation over the conditions of several (e.g. one per seed; ``seeds`` adds a ``seed`` column)."""
        frames = [
            e.conditions.assign(seed=s) if seeds is not None else e.conditions
            for e, s in zip(evaluations, seeds if seeds is not None else [None] * len(evaluations))
        ]
        info = {k: v for k, v in evaluations[0].info.items() if k == "strong_rule"}
        return cls(evaluations[0].method, pd.concat(frames, ignore_index=True), info)

    @property
    def n(self) -> int:
        return len(self.conditions)

    def group(self, name: str) -> pd.DataFrame:
        """The condition rows of a summary group (``overall``, a subgroup or ``strong``)."""
        c = self.conditions
        if name == "overall":
            return c
        if name == STRONG:
            return c[c[STRONG].astype(bool)] if STRONG in c else c.iloc[:0]
        return c[c["subgroup"] == name]

    @property
    def groups(self) -> list[str]:
        """``overall``, the subgroups present, and ``strong`` when the rows carry the flag (even with no row)."""
        present = set(self.conditions["subgroup"])
        return ["overall", *(g for g in SUBGROUPS if g in present), *([STRONG] if STRONG in self.conditions else [])]

    @property
    def summary(self) -> pd.DataFrame:
        """``(n_groups, 1 + 2 * n_metrics)``: per group (index) ``n`` and ``{metric}_mean`` / ``{metric}_median``
        over its conditions, undefined values left out."""
        rows = {}
        for g in self.groups:
            part = self.group(g)
            rows[g] = {"n": len(part)}
            for m in METRICS:
                values = part[m].dropna()
                rows[g].update(
                    {
                        f"{m}_mean": values.mean() if len(values) else np.nan,
                        f"{m}_median": values.median() if len(values) else np.nan,
                    }
                )
        return pd.DataFrame.from_dict(rows, orient="index")

    def mean(self, metric: str, group: str = "overall") -> float | None:
        """Mean of ``metric`` over a group's conditions (``None`` when undefined or the group is absent)."""
        return _none_if_nan(self.group(group)[metric].mean()) if group in self.groups else None

    def to_dict(self, *, conditions: bool = True) -> dict:
        """The ``evaluate`` JSON object: ``method``, ``n_conditions``, ``overall`` / ``subgroups``
        (``{metric: {"mean", "median"}}``, subgroups with ``n``), ``conditions`` (one object per condition) and
        :attr:`info`; ``baselines`` as the same objects without their conditions."""
        summary = self.summary

        def block(g: str) -> dict:
            return {m: {s: _none_if_nan(summary.at[g, f"{m}_{s}"]) for s in ("mean", "median")} for m in METRICS}

        out = {
            "method": self.method,
            "n_conditions": self.n,
            "overall": block("overall"),
            "subgroups": {g: {"n": int(summary.at[g, "n"]), **block(g)} for g in self.groups if g != "overall"},
        }
        if conditions:
            out["conditions"] = [
                {k: _none_if_nan(v) if k in METRICS or k == "strong_value" else v for k, v in row.items()}
                for row in self.conditions.to_dict("records")
            ]
        out.update(self.info)
        if self.baselines:
            out["baselines"] = {name: e.to_dict(conditions=False) for name, e in self.baselines.items()}
        return out


# ---------------------------------------------------------------------------------------------- strong targets


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


def read_obs_column(path: str | os.PathLike, key: str, *, parameter: str = "strong_key") -> pd.DataFrame:
    """``obs`` of the h5ad ``path`` (read backed: no expression loaded), checked to hold the numeric column ``key``
    (named in errors as ``parameter``)."""
    import anndata as ad

    path = Path(path)
    try:
        backed = ad.read_h5ad(path, backed="r")
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{path}: not a readable h5ad file ({exc})") from exc
    obs = backed.obs
    backed.file.close()
    numeric_obs_column(obs, key, where=str(path), parameter=parameter)
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
        raise InputError(
            f"{path}: has {len(obs)} rows but the data read from {data.source.get('path')} has row "
            f"{int(data.rows.max())}; pass the same file"
        )
    means = condition_means(obs[key], data.rows, data.conditions)
    return {c: means[c] for c in data.perturbations}


# ---------------------------------------------------------------------------------------------- scoring


def evaluate_predictions(
    data: PerturbationData,
    predictions: Mapping[str, np.ndarray],
    train_conditions: Sequence[str],
    *,
    method: str,
    strong: StrongTargets | None = None,
) -> Evaluation:
    """Score predicted mean profiles against the observed ones.

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
        Adds each condition's ``strong`` flag and ``strong_value``, the summary group ``strong`` and
        ``info["strong_rule"]``.
    """
    control = data.control_mean()
    rows = [
        {
            "condition": cond,
            "subgroup": subgroup(cond, train_conditions),
            **(strong.row(cond) if strong is not None else {}),
            **condition_metrics(data.condition_mean(cond), np.asarray(pred), control, data.de_genes[cond]),
        }
        for cond, pred in predictions.items()
    ]
    result = Evaluation.from_rows(rows, method=method, info={"strong_rule": strong.rule()} if strong else None)
    result.predictions, result.data = {c: np.asarray(p) for c, p in predictions.items()}, data
    return result


def noise_ceiling(
    data: PerturbationData,
    conditions: Sequence[str],
    train_conditions: Sequence[str],
    *,
    noise: Mapping[str, float] | None = None,
    strong: StrongTargets | None = None,
) -> Evaluation | None:
    """What a perfect predictor of each condition's *true* mean profile would score against its observed mean.

    Single cells: the observed mean of condition ``c`` is its true mean plus noise of variance ``var_g / n_c``
    per gene ``g`` (the cells' variance and count kept by the loader; the control mean is common to both sides).
    Hence, on the genes a metric uses, NormMSE ≈ Σ var/n ÷ Σ (obs − ctrl)²; Pearson Δ ≈ √(1 − mean(var/n) ÷
    Var(obs − ctrl)) (the attenuation of a correlation by measurement noise, the across-gene variance of the true
    change estimated as observed minus noise); direction ≈ mean Φ(|obs − ctrl| / √(var/n)).

    The top-20 genes are chosen on the same noisy means, so a perfect predictor's realised error there is somewhat
    above this (selection on noise): the ceiling is the metric's noise floor, not a score a method must reach.

    Pseudo-bulk deltas keep no variance; with ``noise`` (condition → signal-to-noise ratio: observed effect energy
    over expected noise energy on all genes), Pearson Δ on all genes ≈ √(1 − 1/snr); the other metrics and files
    without ``noise`` have no ceiling (``None`` is returned when nothing can be computed).
    """
    from scipy.stats import norm

    if data.is_delta and noise is None:
        return None
    control = data.control_mean().astype(np.float64)
    rows = []
    for c in conditions:
        row = {"condition": c, "subgroup": subgroup(c, train_conditions), **(strong.row(c) if strong else {})}
        if data.is_delta:
            snr = noise.get(c, float("nan"))
            row.update(
                normmse=np.nan,
                pearson_delta_top20=np.nan,
                direction_top20=np.nan,
                pearson_delta_all=math.sqrt(max(0.0, 1.0 - 1.0 / snr)) if snr > 0 else np.nan,
            )
        else:
            i = data.stats.index(c)
            delta = data.stats.mean[i].astype(np.float64) - control
            se2 = data.stats.var[i].astype(np.float64) / data.stats.n[i]
            top = data.de_genes[c]
            row.update(
                normmse=float(se2[top].sum() / np.sum(delta[top] ** 2)) if np.any(delta[top]) else np.nan,
                pearson_delta_top20=_attenuation(delta[top], se2[top]),
                pearson_delta_all=_attenuation(delta, se2),
                direction_top20=float(np.mean(norm.cdf(np.abs(delta[top]) / np.sqrt(np.maximum(se2[top], 1e-30)))))
                if len(top)
                else np.nan,
            )
        rows.append(row)
    return Evaluation.from_rows(rows, method=CEILING, info={"strong_rule": strong.rule()} if strong else None)


def _attenuation(delta: np.ndarray, se2: np.ndarray) -> float:
    """Expected Pearson of the true change with the observed ``delta`` given per-gene noise variances ``se2``."""
    if len(delta) < 2:
        return float("nan")
    total = float(np.var(delta))
    return math.sqrt(max(0.0, 1.0 - float(np.mean(se2)) / total)) if total > 0 else float("nan")


def gap_closed(method: float | None, baseline: float | None, ceiling: float | None) -> float | None:
    """Fraction of the gap from ``baseline`` (``train_mean``) to the noise ``ceiling`` that ``method`` closes."""
    if None in (method, baseline, ceiling) or ceiling == baseline:
        return None
    return (method - baseline) / (ceiling - baseline)


#: Signal verdicts in words.
SIGNAL, NO_EVIDENCE = "signal", "no evidence"


def signal_test(
    real: Evaluation,
    shuffled: Sequence[Evaluation],
    *,
    metric: str,
    group: str = "overall",
    n_permutations: int = 10000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict:
    """Does a method on real embeddings beat the same method on row-permuted embeddings (the control)?

    Paired over the conditions of ``group`` (rows matched by ``seed`` and ``condition``): each condition's real
    score against the mean of its scores under the permutations; a one-sided sign-flip permutation test of the mean
    paired difference (better = positive; for NormMSE, lower is better).

    Returns
    -------
    ``{"metric", "group", "n", "real", "shuffled", "delta", "p_value", "verdict"}``; ``verdict`` is ``signal``
    when ``delta > 0`` and ``p_value < alpha``, else ``no evidence``.
    """
    keys = [k for k in ("seed", "condition") if k in real.conditions]
    base = real.group(group)[keys + [metric]].rename(columns={metric: "real"})
    control = pd.concat([s.conditions[keys + [metric]] for s in shuffled]).groupby(keys, as_index=False)[metric].mean()
    paired = base.merge(control.rename(columns={metric: "shuffled"}), on=keys).dropna()
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    d = sign * (paired["real"].to_numpy() - paired["shuffled"].to_numpy())
    out = {
        "metric": metric,
        "group": group,
        "n": int(len(d)),
        "real": _none_if_nan(paired["real"].mean()),
        "shuffled": _none_if_nan(paired["shuffled"].mean()),
        "delta": _none_if_nan(d.mean()) if len(d) else None,
        "p_value": None,
        "verdict": NO_EVIDENCE,
    }
    if len(d):
        flips = np.random.default_rng(seed).choice((-1.0, 1.0), size=(n_permutations, len(d)))
        out["p_value"] = float((1 + np.sum((flips * d).mean(axis=1) >= d.mean() - 1e-12)) / (1 + n_permutations))
        if d.mean() > 0 and out["p_value"] < alpha:
            out["verdict"] = SIGNAL
    return out


# ---------------------------------------------------------------------------------------------- neighbour quality


def go_neighbor_quality(
    emb: EmbeddingSet,
    annotations: pd.DataFrame,
    *,
    k: int = 10,
    entrez_ids: Iterable[int] | None = None,
    n_random: int = 20000,
    seed: int = 0,
) -> dict:
    """How often a gene's nearest neighbours share a GO term with it, against random genes.

    Parameters
    ----------
    emb
        The embedding set.
    annotations
        ``entrez_id, go_id`` rows (e.g. ``Corpus.go_annotations("BP")`` without uninformative terms); only genes
        annotated here count, both as queries and as neighbours.
    k
        Neighbours per gene (flat FAISS inner-product index on the normalised vectors).
    entrez_ids
        Restrict to these genes (e.g. the genes every compared set holds); default all genes of the set.
    n_random
        Random gene pairs drawn for the chance level.

    Returns
    -------
    ``{"genes": N, "k": k, "share_go_bp": x, "random_share_go_bp": y, "enrichment": x / y}``; the shares are
    ``None`` when fewer than ``k + 1`` genes are annotated.
    """
    import faiss

    terms = annotations.groupby("entrez_id")["go_id"].apply(frozenset).to_dict()
    wanted = None if entrez_ids is None else {int(e) for e in entrez_ids}
    rows = [i for i, e in enumerate(emb.entrez_ids) if int(e) in terms and (wanted is None or int(e) in wanted)]
    result = {"genes": len(rows), "k": k, "share_go_bp": None, "random_share_go_bp": None, "enrichment": None}
    if len(rows) <= k:
        return result
    ids = [int(emb.entrez_ids[r]) for r in rows]
    x = unit_rows(emb.vectors[rows])
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    _, hits = index.search(x, k + 1)
    shared = [bool(terms[ids[i]] & terms[ids[j]]) for i, row in enumerate(hits) for j in row if j != i and j >= 0]
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(ids), n_random), rng.integers(0, len(ids), n_random)
    keep = a != b
    random_share = float(np.mean([bool(terms[ids[i]] & terms[ids[j]]) for i, j in zip(a[keep], b[keep])]))
    share = float(np.mean(shared))
    result.update(
        share_go_bp=round(share, 4),
        random_share_go_bp=round(random_share, 4),
        enrichment=round(share / random_share, 3) if random_share else None,
    )
    return result


# ---------------------------------------------------------------------------------------------- models


def _eval_data(predictor: Predictor, data) -> tuple[PerturbationData, bool]:
    """``(data to score, whether it is the training data)`` for :func:`evaluate`."""
    source = predictor.data_source_
    if data is None:
        if getattr(predictor, "data_", None) is not None:
            return predictor.data_, True
        if source.get("path") is None:
            raise InputError(
                "the model was trained on an AnnData in memory and keeps no file to read it from; pass data=ADATA"
            )
        data = source["path"]
    if isinstance(data, PerturbationData):
        return data, data.source.get("path") is not None and data.source.get("path") == source.get("path")
    own = (
        not hasattr(data, "obs")
        and source.get("path") is not None
        and Path(data).resolve() == Path(source["path"]).resolve()
    )
    if source.get("db") is None:
        raise InputError("the model records no corpus database to resolve the data's genes with; pass db=DB")
    prepared = prepare_data(data, DataOptions.from_json(source["options"]), source["db"], predictor.embeddings_)
    return prepared, own


def evaluate(
    model: Predictor | str | os.PathLike,
    data: PerturbationData | ad.AnnData | str | os.PathLike | None = None,
    *,
    db: str | os.PathLike | None = None,
    baselines: Sequence[str] = (),
    strong: StrongTargets | None = None,
) -> Evaluation:
    """Score a model on the test conditions of its split, or on every condition of other data.

    Parameters
    ----------
    model
        A fitted predictor (see :func:`~scouter_local.training.train`) or a model folder.
    data
        ``None``: the data the model was trained on (in memory, or read again from its file), scored on the
        split's test conditions. Otherwise other data (a prepared :class:`PerturbationData`, an AnnData or an h5ad
        file, read with the model's data options), scored on all its conditions.
    db
        Corpus database of the model's embedding set (default: the one recorded at training).
    baselines
        Baselines fitted on the model's training conditions and scored on the same conditions.
    strong
        Adds the ``strong`` group (see :class:`StrongTargets`).

    Returns
    -------
    :class:`Evaluation` (``.conditions`` one row per condition, ``.summary`` per group, ``.baselines``).

    Examples
    --------
    >>> result = evaluate(model, baselines=["no_change"])  # model: gene_delta trained on the Norman screen
    >>> list(result.conditions.columns)
    ['condition', 'subgroup', 'normmse', 'pearson_delta_top20', 'pearson_delta_all', 'direction_top20']
    >>> int(result.summary.loc["overall", "n"]), result.baselines["no_change"].mean("normmse")
    (7, 1.0)
    """
    from scouter_local.predictors.base import Predictor
    from scouter_local.predictors.checkpoint import load_model
    from scouter_local.training import train

    predictor = model if isinstance(model, Predictor) else load_model(model, db=db)
    predictor._check_fitted()
    if db is not None:
        predictor.data_source_ = {**predictor.data_source_, "db": str(Path(db).resolve())}
    scored, own = _eval_data(predictor, data)
    if list(scored.genes) != list(predictor.genes_):
        raise InputError(
            f"the data has {len(scored.genes)} readout genes, the model {len(predictor.genes_)} "
            f"{'in another order' if sorted(scored.genes) == sorted(predictor.genes_) else 'other genes'}"
        )
    split = predictor.split_
    if own:
        if not split.test:
            raise InputError(
                f"the model was trained with split={split.kind!r}, so there are no test conditions; "
                "pass data=FILE to evaluate on other data"
            )
        missing = [c for c in split.test if c not in set(scored.perturbations)]
        if missing:
            raise InputError(f"test condition {missing[0]!r} of the saved split is not in the data")
        conditions = list(split.test)
    else:
        conditions = scored.perturbations
    result = evaluate_predictions(
        scored,
        dict(zip(conditions, predictor.predict(conditions))),
        predictor.train_conditions_,
        method=predictor.name,
        strong=strong,
    )
    result.info.update(data=scored.source.get("path"), excluded=scored.excluded)
    if baselines:
        training = scored if own else _eval_data(predictor, None)[0]
        for name in baselines:
            fitted = train(training, predictor.embeddings_, method=name, split=split, seed=predictor.seed)
            result.baselines[name] = evaluate_predictions(
                scored,
                dict(zip(conditions, fitted.predict(conditions))),
                fitted.train_conditions_,
                method=name,
                strong=strong,
            )
    return result


def write_report(result: Evaluation, json_path: str | os.PathLike) -> tuple[Path, Path]:
    """Write the result as JSON and its per-condition table as CSV beside it (same stem, ``.csv``)."""
    json_path = Path(json_path)
    csv_path = json_path.with_suffix(".csv")
    write_json_atomic(json_path, result.to_dict())
    frame = result.conditions
    write_csv_atomic(
        csv_path,
        ["method", "condition", "subgroup", *METRICS],
        (
            [result.method, r.condition, r.subgroup, *[_none_if_nan(getattr(r, m)) for m in METRICS]]
            for r in frame.itertuples()
        ),
    )
    return json_path, csv_path
