"""An :class:`Evaluation`: one row per condition (a ``pandas.DataFrame``), summarised overall and by subgroup
(:attr:`Evaluation.summary`); :meth:`Evaluation.to_dict` is the ``evaluate`` JSON object.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gene_corpus.files import write_csv_atomic, write_json_atomic
from scouter_local.data.perturbation import PerturbationData
from scouter_local.data.splits import SUBGROUPS
from scouter_local.evaluation.metrics import METRICS, none_if_nan

#: Name of the extra subgroup of :class:`StrongTargets` (beside :data:`~scouter_local.data.SUBGROUPS`).
STRONG = "strong"


#: Summary groups in display order.
GROUPS = ("overall", *SUBGROUPS, STRONG)


#: Method name of the noise-ceiling entry.
CEILING = "ceiling"


#: Per-condition columns of the effect label (``evaluate`` of a model with one; last in its CSV).
EFFECT_COLUMNS = ("effect", "effect_statistic")


@dataclass
class Evaluation:
    """The scores of one method on some conditions.

    Attributes
    ----------
    method
        Method name (``ceiling`` for :func:`noise_ceiling`).
    conditions
        One row per evaluated condition: ``condition``, ``subgroup``, the :data:`METRICS` (NaN where undefined,
        e.g. a constant profile), and where asked ``seed`` (pooled runs), ``strong`` / ``strong_value``,
        ``effect`` / ``effect_statistic`` (:data:`EFFECT_COLUMNS`).
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
        for m in METRICS:  # a metric the rows lack (written before it existed) is undefined
            frame[m] = pd.to_numeric(frame[m], errors="coerce").astype(float) if m in frame else np.nan
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
        return none_if_nan(self.group(group)[metric].mean()) if group in self.groups else None

    def to_dict(self, *, conditions: bool = True) -> dict:
        """The ``evaluate`` JSON object: ``method``, ``n_conditions``, ``overall`` / ``subgroups``
        (``{metric: {"mean", "median"}}``, subgroups with ``n``), ``conditions`` (one object per condition) and
        :attr:`info`; ``baselines`` as the same objects without their conditions."""
        summary = self.summary

        def block(g: str) -> dict:
            return {m: {s: none_if_nan(summary.at[g, f"{m}_{s}"]) for s in ("mean", "median")} for m in METRICS}

        out = {
            "method": self.method,
            "n_conditions": self.n,
            "overall": block("overall"),
            "subgroups": {g: {"n": int(summary.at[g, "n"]), **block(g)} for g in self.groups if g != "overall"},
        }
        if conditions:
            out["conditions"] = [
                {k: none_if_nan(v) if k in (*METRICS, "strong_value", EFFECT_COLUMNS[1]) else v for k, v in row.items()}
                for row in self.conditions.to_dict("records")
            ]
        out.update(self.info)
        if self.baselines:
            out["baselines"] = {name: e.to_dict(conditions=False) for name, e in self.baselines.items()}
        return out


def write_report(result: Evaluation, json_path: str | os.PathLike) -> tuple[Path, Path]:
    """Write the result as JSON and its per-condition table as CSV beside it (same stem, ``.csv``)."""
    json_path = Path(json_path)
    csv_path = json_path.with_suffix(".csv")
    write_json_atomic(json_path, result.to_dict())
    frame = result.conditions
    effect = [c for c in EFFECT_COLUMNS if c in frame]
    write_csv_atomic(
        csv_path,
        ["method", "condition", "subgroup", *METRICS, *effect],
        (
            [result.method, r.condition, r.subgroup, *[none_if_nan(getattr(r, m)) for m in (*METRICS, *effect)]]
            for r in frame.itertuples()
        ),
    )
    return json_path, csv_path
