"""Effect detection in the benchmark: per seed (in the light methods' process, once per set), the effect model fitted
on the training conditions' single genes and on each row-shuffled copy of the set, and the well-studied baseline,
all predicting the test conditions' probability of a detectable effect; pooled over the seeds into the ``detection``
blocks of ``summary.json`` (:func:`~scouter_local.evaluation.detection.detection_metrics`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gene_corpus.errors import InputError
from scouter_local.conditions import is_single
from scouter_local.data.effect import EffectLabel
from scouter_local.data.link import condition_rows
from scouter_local.data.perturbation import PerturbationData
from scouter_local.data.splits import Split
from scouter_local.embedding.sets import EmbeddingSet
from scouter_local.evaluation.detection import delong_test, detection_metrics, precision_curve
from scouter_local.evaluation.signal import shuffled_embeddings

#: ``method`` of a run's detection entry (``runs/<set>_detection_seed<seed>.json``).
DETECTION = "detection"

#: ``method`` of the well-studied baseline's ``summary.json`` row.
WELL_STUDIED = "well_studied"

#: Name of the effect model in tables.
EFFECT_MODEL = "effect model"

#: Name in tables of the embedding alone (shown where the effect model keeps the well-studied features).
EMBEDDING_ONLY = "embedding only"


def shuffle_seed(seed: int, k: int) -> int:
    """Seed of the ``k``-th row permutation of a set in the run of split seed ``seed`` (the profile methods'
    controls and the effect model's share it)."""
    return 10_000 * seed + k


def run_detection(
    data: PerturbationData,
    embeddings: EmbeddingSet,
    split: Split,
    label: EffectLabel,
    *,
    seed: int,
    shuffles: int,
    **effect_options,
) -> dict:
    """One seed's effect detection: the effect model and the well-studied baseline fitted on the labelled single
    genes of the split's training conditions (train and validation: the model chooses its options by
    cross-validation), then refitted on each of ``shuffles`` row-shuffled copies of ``embeddings`` (the genes'
    well-studied features stay real), all predicting the labelled single genes of the test conditions. When the
    model keeps the well-studied features (stacking), the embedding alone (the model's first stage, what
    ``stacking="never"`` fits) is reported too, with its copies' first stages: the copies of a stacked model test
    what the embedding adds to the well-studied features, those of the embedding alone whether it carries any
    signal at all.

    ``effect_options`` go to :class:`~scouter_local.predictors.effect.EffectModel` (e.g. ``stacking="never"``: the
    embedding alone, whose shuffled copies then know nothing).

    Returns
    -------
    The run's detection entry: ``method`` (:data:`DETECTION`), ``set``, ``seed``, ``split``, ``label`` (the rule),
    ``fit_seconds`` (all fits), ``train_base_rate``, ``effect_model`` (the fitted model in words) and
    ``conditions``: ``[{"condition", "label", "p_effect", "strength", "well_studied", "shuffled": [p, …]}]`` (with
    ``p_embedding`` and ``shuffled_embedding`` of the embedding alone when the model stacks); or,
    when the training genes cannot fit the model, ``note`` (why) instead of the last three.
    """
    from scouter_local.predictors.effect import fit_effect

    entry = {
        "method": DETECTION,
        "set": embeddings.name,
        "seed": seed,
        "split": split.to_json(),
        "label": label.rule,
    }
    train = [*split.train, *split.val]
    test = [c for c in split.test if is_single(c) and c in label]
    t0 = time.perf_counter()
    try:
        part = fit_effect(data, embeddings, train, label, seed=seed, **effect_options)
    except InputError as exc:
        return {**entry, "fit_seconds": time.perf_counter() - t0, "note": str(exc)}
    rows = [condition_rows(c, data.gene_rows, embeddings)[0] for c in test]
    predicted = part.predict(rows, embeddings, data.source.get("db"))
    copies, copies_alone = _shuffled_fits(part, data, embeddings, train, label, rows, seed, shuffles, effect_options)
    stacked = part.model.uses_well_studied_
    alone = part.model.predict_embedding(embeddings.vectors[rows]) if stacked else None
    conditions = [
        {
            "condition": c,
            "label": bool(y),
            **{k: float(v) for k, v in predicted.iloc[i].items()},
            "shuffled": [float(p[i]) for p in copies],
            **(
                {"p_embedding": float(alone[i]), "shuffled_embedding": [float(p[i]) for p in copies_alone]}
                if stacked
                else {}
            ),
        }
        for i, (c, y) in enumerate(zip(test, label.labels(test)))
    ]
    return {
        **entry,
        "fit_seconds": time.perf_counter() - t0,
        "train_base_rate": part.model.base_rate_,
        "effect_model": part.describe(),
        "conditions": conditions,
    }


def _shuffled_fits(
    part, data, embeddings, train, label, rows, seed: int, shuffles: int, options: dict
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``p_effect`` and the embedding alone's probability at ``rows`` of the effect model refitted (with
    ``options``) on each of ``shuffles`` row-shuffled copies of ``embeddings`` (the genes, and so their
    well-studied features, stay the same: read once)."""
    from scouter_local.predictors.effect import fit_effect

    rows = np.asarray(rows, dtype=np.int64)
    features = part.features(embeddings.entrez_ids[rows], data.source.get("db"))
    effect, alone = [], []
    for k in range(shuffles):
        control = shuffled_embeddings(embeddings, data, seed=shuffle_seed(seed, k))
        model = fit_effect(data, control, train, label, seed=seed, **options).model
        effect.append(model.predict_effect(control.vectors[rows], features))
        alone.append(model.predict_embedding(control.vectors[rows]))
    return effect, alone


@dataclasses.dataclass
class DetectionResult:
    """Effect detection on one embedding set, pooled over seeds.

    Attributes
    ----------
    set
        Embedding set.
    runs
        Per seed: the detection entry as written to ``runs/<set>_detection_seed<seed>.json``.
    frame
        One row per (seed, test single gene): ``seed``, ``condition``, ``label`` (bool), ``p_effect`` (the effect
        model's probability), ``well_studied`` (the baseline's), ``train_base_rate`` (the seed's share of positive
        training conditions). Empty when no seed could fit the effect model.
    shuffled
        ``(n_shuffles, len(frame))`` probabilities of the effect model refitted on each row-shuffled copy.
    model, well_studied
        The ``detection`` blocks of the effect model (with ``vs_well_studied``: the one-sided DeLong test of its
        AUROC over the baseline's; and ``embedding_only``, the block of the embedding alone against its own shuffled
        copies, when the model kept the well-studied features) and of the well-studied baseline; ``None`` when not
        fitted (the baseline: when the data record no corpus to read the genes' features from).
    note
        Why there is no detection block (the effect model refused, e.g. too few labelled training conditions).
    """

    set: str
    runs: list[dict]
    frame: pd.DataFrame
    shuffled: np.ndarray
    model: dict | None = None
    well_studied: dict | None = None
    note: str = ""

    @classmethod
    def pool(cls, runs: list[dict]) -> DetectionResult:
        """Pool the seeds' detection entries (a seed whose entry has a ``note`` instead of rows is left out)."""
        fitted = [r for r in runs if not r.get("note")]
        if not fitted:
            return cls(runs[0]["set"], runs, pd.DataFrame(), np.zeros((0, 0)), note=runs[0]["note"])
        frame = pd.DataFrame(
            [
                {
                    "seed": r["seed"],
                    "train_base_rate": r["train_base_rate"],
                    **{k: v for k, v in row.items() if k not in ("shuffled", "shuffled_embedding")},
                }
                for r in fitted
                for row in r["conditions"]
            ]
        )
        n_shuffles = min(len(r["conditions"][0]["shuffled"]) if r["conditions"] else 0 for r in fitted)
        rows = [row for r in fitted for row in r["conditions"]]
        shuffled = np.array([[row["shuffled"][k] for row in rows] for k in range(n_shuffles)]).reshape(
            n_shuffles, len(frame)
        )
        result = cls(runs[0]["set"], runs, frame, shuffled)
        result.model = result._block(frame["p_effect"].to_numpy(), shuffled=list(shuffled))
        if "p_embedding" in frame:  # some seed's model stacked: the embedding alone (a seed that did not: its model)
            alone = frame["p_embedding"].fillna(frame["p_effect"]).to_numpy()
            copies = [[row.get("shuffled_embedding", row["shuffled"])[k] for row in rows] for k in range(n_shuffles)]
            result.model["embedding_only"] = result._block(alone, shuffled=[np.asarray(c) for c in copies])
        if frame["well_studied"].notna().all():  # the genes' corpus was at hand
            result.model["vs_well_studied"] = result._versus_well_studied()
            result.well_studied = result._block(frame["well_studied"].to_numpy(), shuffled=None)
        return result

    def blocks(self) -> list[tuple[str, dict]]:
        """``(name, block)`` of each detection block there is: the effect model, the embedding alone (when the model
        stacked), the well-studied baseline."""
        named = (
            (EFFECT_MODEL, self.model),
            (EMBEDDING_ONLY, (self.model or {}).get("embedding_only")),
            (WELL_STUDIED, self.well_studied),
        )
        return [(name, block) for name, block in named if block is not None]

    @property
    def label(self) -> str:
        return self.runs[0].get("label", "")

    @property
    def seeds(self) -> list[int]:
        return [r["seed"] for r in self.runs]

    def _block(self, p: np.ndarray, *, shuffled: list[np.ndarray] | None) -> dict:
        f = self.frame
        return detection_metrics(
            f["label"].to_numpy(),
            p,
            groups=f["seed"].to_numpy(),
            train_base_rate=f["train_base_rate"].to_numpy(),
            label=self.label,
            shuffled=shuffled,
        )

    def _versus_well_studied(self) -> dict:
        """``{"delta_auroc", "p_value"}``: DeLong's one-sided test of the effect model's AUROC over the
        well-studied baseline's, on the same test conditions."""
        f = self.frame
        test = delong_test(f["label"].to_numpy(), f["p_effect"].to_numpy(), [f["well_studied"].to_numpy()], f["seed"])
        return {"delta_auroc": test["delta"], "p_value": test["p_value"]}

    def precision_curves(self, n_max: int = 100) -> dict[str, np.ndarray]:
        """``{"effect model": (n,), "well_studied": (n,)}``: precision among the top N of each split's ranking,
        averaged over splits, for N = 1 … ``n_max`` (at most the longest split's length)."""
        f = self.frame
        n_max = min(n_max, int(f.groupby("seed").size().max()))
        return {
            name: precision_curve(f["label"].to_numpy(), f[column].to_numpy(), f["seed"].to_numpy(), n_max)
            for name, column in ((EFFECT_MODEL, "p_effect"), (WELL_STUDIED, "well_studied"))
        }

    def to_json(self) -> dict:
        """The ``summary.json`` row of the well-studied baseline: ``set``, ``method``, ``n_conditions`` (the test
        single genes scored, over all seeds), ``detection``, ``seeds`` (and ``note`` where there is no block)."""
        n = int(self.frame["condition"].nunique()) if len(self.frame) else 0
        out = {"set": self.set, "method": WELL_STUDIED, "n_conditions": n, "detection": self.well_studied}
        out["seeds"] = self.seeds
        if self.note:
            out["note"] = self.note
        return out


def detection_figure(detected: Sequence[DetectionResult], path: str | Path) -> Path:
    """Precision among each split's top N against N (each set's effect model; the first set's well-studied
    baseline dashed; the base rate dotted) beside the reliability diagram of each set's pooled probabilities (and
    of the baseline's, with a single set), written to ``path``.

    Parameters
    ----------
    detected
        Sets with a detection block (:attr:`DetectionResult.model` not ``None``).
    """
    from scouter_local.reporting.plots import precision_at_n, pyplot, reliability_diagram, save_figure

    first = detected[0]
    single = len(detected) == 1
    name = (lambda d: EFFECT_MODEL) if single else (lambda d: d.set)
    curves = {name(d): d.precision_curves()[EFFECT_MODEL] for d in detected}
    probabilities = {name(d): (d.frame["label"], d.frame["p_effect"]) for d in detected}
    if first.well_studied is not None:
        curves[WELL_STUDIED] = first.precision_curves()[WELL_STUDIED]
        if single:
            probabilities[WELL_STUDIED] = (first.frame["label"], first.frame["well_studied"])
    fig, (left, right) = pyplot().subplots(1, 2, figsize=(11.5, 4.5))
    precision_at_n(curves, base_rate=first.model["base_rate"], baseline=WELL_STUDIED, ax=left)
    reliability_diagram(probabilities, ax=right)
    where = f"set {first.set}" if single else f"{len(detected)} sets"
    fig.suptitle(f"Effect detection ({first.label}, {where}): precision among the top N; calibration", fontsize=12)
    fig.tight_layout()
    return save_figure(fig, path)
