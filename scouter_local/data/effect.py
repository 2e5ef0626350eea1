"""The effect label of a screen's conditions: which perturbations did anything detectable.

Two sources, both giving an :class:`EffectLabel` (a per-condition table of a statistic, a strength and the label):

- :func:`threshold_label`: a numeric ``obs`` column named by the user (``strong_key``) above a threshold
  (``strong_above``), e.g. ``signal_to_noise > 1.1`` of the Replogle pseudo-bulk file;
- :func:`etest_label`: single cells tested against the control cells with scPerturb's E-test (Peidli et al., Nat
  Methods 2024): energy distance in PCA space, a label-permutation p-value per condition, Benjamini-Hochberg across
  conditions, detectable at FDR < ``alpha``.

With squared Euclidean distances scPerturb's E-statistic (a V-statistic) is exactly ``2 ||mean_c - mean_ctrl||^2``
in PCA space, so each permutation is a sum of randomly chosen rows: ``runs`` permutations of a condition are one
``(runs, n) @ (n, n_components)`` product, with no distance matrix. :func:`effect_label` picks the source: a user
column wins; single cells get the E-test; pseudo-bulk data without a column get no label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gene_corpus.errors import InputError
from scouter_local.conditions import CTRL
from scouter_local.data.cells import to_dense
from scouter_local.data.perturbation import PerturbationData
from scouter_local.data.read import condition_values, numeric_obs_column, read_obs_column

#: Label kinds: a user column and threshold, or the single-cell E-test.
LABEL_KINDS = ("threshold", "etest")
#: An effect label needs at least this many labelled conditions.
MIN_LABELLED = 10
#: Columns of every label table (after the index, ``condition``); the E-test adds :data:`ETEST_COLUMNS`.
COLUMNS = ("statistic", "strength", "label")
ETEST_COLUMNS = (
    "n_cells",
    "n_control",
    "e_distance",
    "e_distance_unbiased",
    "signal_to_noise",
    "p_value",
    "fdr",
)
#: Permutations of one condition drawn at once (bounds the ``(runs, n)`` selection matrix).
_PERMUTATION_CHUNK = 250


@dataclass(frozen=True, eq=False)
class EffectLabel:
    """Which conditions of a screen have a detectable effect, and how strong it is.

    Attributes
    ----------
    rule
        The rule in words, shown in tables: ``signal_to_noise > 1.1`` or ``E-test FDR < 0.05``.
    kind
        ``threshold`` or ``etest`` (:data:`LABEL_KINDS`).
    table
        One row per labelled condition (index ``condition``): ``statistic`` (the column's condition mean, or the
        E-distance), ``strength`` (log of the signal-to-noise ratio where it is positive, else the statistic),
        ``label`` (bool); the E-test adds :data:`ETEST_COLUMNS`.
    params
        How the label was made (``key``/``above``, or the E-test's options).
    """

    rule: str
    kind: str
    table: pd.DataFrame
    params: dict = field(default_factory=dict)

    def __contains__(self, condition: str) -> bool:
        return condition in self.table.index

    @property
    def n(self) -> int:
        """Number of labelled conditions."""
        return len(self.table)

    @property
    def positives(self) -> int:
        """Number of conditions labelled as having an effect."""
        return int(self.table["label"].sum())

    def labels(self, conditions: Sequence[str]) -> np.ndarray:
        """``(len(conditions),)`` bool labels of labelled ``conditions``."""
        return self._column(conditions, "label").astype(bool)

    def strengths(self, conditions: Sequence[str]) -> np.ndarray:
        """``(len(conditions),)`` float strengths of labelled ``conditions``."""
        return self._column(conditions, "strength").astype(np.float64)

    def row(self, condition: str) -> dict:
        """``{"effect": bool | None, "effect_statistic": float | None}`` of one condition (``None``: unlabelled)."""
        if condition not in self:
            return {"effect": None, "effect_statistic": None}
        found = self.table.loc[condition]
        return {"effect": bool(found["label"]), "effect_statistic": _number(found["statistic"])}

    def _column(self, conditions: Sequence[str], column: str) -> np.ndarray:
        missing = [c for c in conditions if c not in self]
        if missing:
            raise InputError(f"condition {missing[0]!r} has no effect label ({self.rule})")
        return self.table.loc[list(conditions), column].to_numpy()

    def to_json(self) -> dict:
        """``{"rule", "kind", "params", "n", "positives", "conditions": [{"condition", "statistic", "strength",
        "label", …}]}`` (missing numbers as ``None``)."""
        rows = [
            {"condition": str(c), **{k: (bool(v) if k == "label" else _number(v)) for k, v in values.items()}}
            for c, values in self.table.to_dict("index").items()
        ]
        return {
            "rule": self.rule,
            "kind": self.kind,
            "params": dict(self.params),
            "n": self.n,
            "positives": self.positives,
            "conditions": rows,
        }

    @classmethod
    def from_json(cls, d: dict) -> EffectLabel:
        """Rebuild from :meth:`to_json`."""
        table = pd.DataFrame(d["conditions"]).set_index("condition")
        table["label"] = table["label"].astype(bool)
        return cls(d["rule"], d["kind"], table, dict(d.get("params", {})))


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _strength(statistic: pd.Series) -> pd.Series:
    """Log of the statistic where every value is positive (a ratio such as signal-to-noise), else the values."""
    return np.log(statistic) if (statistic > 0).all() else statistic.astype(np.float64)


def threshold_label(data: PerturbationData, key: str, above: float, *, obs: pd.DataFrame | None = None) -> EffectLabel:
    """Label each condition by whether the mean of the numeric column ``obs[key]`` over its rows exceeds ``above``.

    Parameters
    ----------
    data
        A screen (conditions as :func:`~scouter_local.data.prepare_data` spells them).
    key
        Numeric ``obs`` column, e.g. ``signal_to_noise``.
    above
        Threshold; a condition has an effect when its mean is strictly greater.
    obs
        ``obs`` of the AnnData ``data`` was read from (all its rows); default: read from ``data``'s file.

    Returns
    -------
    :class:`EffectLabel` of kind ``threshold`` over the conditions with a value; ``strength`` is the log of the
    value where all values are positive, else the value.

    Raises
    ------
    InputError
        The column is missing, not numeric or constant; the threshold leaves no condition above it or none at or
        below it; fewer than :data:`MIN_LABELLED` conditions have a value.
    """
    path = data.source.get("path")
    if obs is None:
        if path is None:
            raise InputError(
                f"the data were read from an AnnData in memory, so strong_key={key!r} cannot be read again; "
                "pass obs=ADATA.obs"
            )
        obs = read_obs_column(path, key)  # checks the column
    else:
        numeric_obs_column(obs, key, where=str(path or "adata"), parameter="strong_key")
    where = str(path or "adata")
    values = pd.Series(condition_values(obs, key, data, where=where), dtype=np.float64).dropna()
    _check_threshold(values, key, above, where)
    table = pd.DataFrame({"statistic": values, "strength": _strength(values), "label": values > above})
    table.index.name = "condition"
    return EffectLabel(f"{key} > {above:g}", "threshold", table, {"key": key, "above": float(above)})


def _check_threshold(values: pd.Series, key: str, above: float, where: str) -> None:
    """One-line errors for a column that cannot label conditions at ``above``."""
    if len(values) < MIN_LABELLED:
        raise InputError(
            f"{where}: only {len(values)} condition(s) have a value of obs[{key!r}]; strong_key needs at least "
            f"{MIN_LABELLED} labelled conditions"
        )
    if values.nunique() < 2:
        raise InputError(
            f"{where}: obs[{key!r}] is constant ({values.iloc[0]:g}) over the conditions; strong_key needs a column "
            "that tells them apart, e.g. signal_to_noise"
        )
    if not (values > above).any():
        raise InputError(
            f"strong_above={above:g} leaves no condition above it (largest mean obs[{key!r}] is {values.max():g}); "
            "pass a lower strong_above"
        )
    if (values > above).all():
        raise InputError(
            f"strong_above={above:g} leaves no condition at or below it (smallest mean obs[{key!r}] is "
            f"{values.min():g}); pass a higher strong_above"
        )


def etest_label(
    data: PerturbationData,
    *,
    n_components: int = 50,
    runs: int = 1000,
    alpha: float = 0.05,
    max_control: int | None = 2000,
    max_pca_cells: int = 20000,
    max_genes: int = 2000,
    seed: int = 0,
) -> EffectLabel:
    """scPerturb's E-test of every perturbed condition's cells against the control cells.

    The expression (as read, e.g. log-normalised) of the ``max_genes`` most variable readout genes is projected on
    its first ``n_components`` principal components (centred, not scaled; fitted on a seeded sample of at most
    ``max_pca_cells`` cells). Per condition, ``E = 2 ||mean_c - mean_ctrl||^2`` in that space (scPerturb's
    E-distance with squared Euclidean distances), compared with ``runs`` random relabellings of the condition's
    and the control's cells: ``p = (1 + #{null >= E}) / (1 + runs)``; Benjamini-Hochberg across conditions; a
    condition has an effect at FDR < ``alpha``. Cells are read in chunks, so the data may be backed.

    Parameters
    ----------
    data
        Single cells with control cells (not pseudo-bulk deltas).
    n_components
        Principal components (fewer when the sample or the genes are fewer).
    runs
        Label permutations per condition (the smallest p-value is ``1 / (1 + runs)``).
    alpha
        FDR threshold of the label.
    max_control
        Control cells used (a seeded sample when there are more; ``None``: all).
    max_pca_cells
        Cells the PCA is fitted on (a seeded sample when there are more).
    max_genes
        Readout genes used (the most variable, by the per-condition statistics, when there are more).
    seed
        Seed of the samples, the PCA and the permutations.

    Returns
    -------
    :class:`EffectLabel` of kind ``etest``: ``statistic`` = ``e_distance``, ``strength`` = log of the
    ``signal_to_noise`` ratio ``||mean_c - mean_ctrl||^2 / (tr S_c / n_c + tr S_ctrl / n_ctrl)`` in PCA space,
    ``label`` = ``fdr < alpha``, and ``n_cells``, ``n_control``, ``e_distance``, ``e_distance_unbiased`` (the
    U-statistic ``2 (||mean_c - mean_ctrl||^2 - tr S_c / n_c - tr S_ctrl / n_ctrl)``, about 0 without effect),
    ``signal_to_noise``, ``p_value`` and ``fdr``.
    """
    from scipy.stats import false_discovery_control
    from threadpoolctl import threadpool_limits

    if data.is_delta:
        raise InputError(
            "the E-test needs single cells, and these data are pseudo-bulk deltas; pass strong_key=COLUMN "
            "strong_above=X to label conditions by a column instead"
        )
    if runs < 1 or not 0 < alpha < 1:
        raise InputError(f"runs={runs}, alpha={alpha}: expected at least 1 permutation and 0 < alpha < 1")
    rng = np.random.default_rng(seed)
    cells, conditions = _test_cells(data, max_control, rng)
    scores = _pca_scores(data, cells, n_components=n_components, max_cells=max_pca_cells, max_genes=max_genes, rng=rng)
    control = scores[conditions == CTRL]
    with threadpool_limits(limits=1, user_api="blas"):  # many small products: threads only wait on each other
        rows = [_etest_row(scores[conditions == c], control, runs, rng) for c in data.perturbations]
    table = pd.DataFrame(rows, index=pd.Index(data.perturbations, name="condition"))
    table["fdr"] = false_discovery_control(table["p_value"].to_numpy(), method="bh")
    table["statistic"] = table["e_distance"]
    table["strength"] = np.log(np.maximum(table["signal_to_noise"], np.finfo(float).tiny))
    table["label"] = table["fdr"] < alpha
    params = {
        "n_components": int(scores.shape[1]),
        "runs": runs,
        "alpha": alpha,
        "correction": "fdr_bh",
        "max_control": max_control,
        "max_pca_cells": max_pca_cells,
        "max_genes": max_genes,
        "seed": seed,
    }
    return EffectLabel(f"E-test FDR < {alpha:g}", "etest", table[[*COLUMNS, *ETEST_COLUMNS]], params)


def _test_cells(
    data: PerturbationData, max_control: int | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(file rows, conditions)`` of the cells tested, sorted by row: every perturbed cell and the control cells
    (a sample of ``max_control`` when there are more)."""
    control = data.conditions == CTRL
    if not control.any():
        raise InputError("the data have no control cells to test conditions against")
    keep = ~control
    positions = np.flatnonzero(control)
    if max_control is not None and len(positions) > max_control:
        positions = rng.choice(positions, max_control, replace=False)
    keep[positions] = True
    return data.rows[keep], data.conditions[keep]


def _variable_genes(data: PerturbationData, max_genes: int) -> np.ndarray:
    """Indices of the ``max_genes`` readout genes of largest variance over all cells (from the per-condition
    counts, means and variances), in gene order; all genes when there are no more."""
    if data.n_genes <= max_genes:
        return np.arange(data.n_genes)
    n = data.stats.n.astype(np.float64)[:, None]
    grand = (n * data.stats.mean).sum(0) / n.sum()
    spread = (np.nan_to_num(data.stats.var) * (n - 1)).sum(0) + (n * (data.stats.mean - grand) ** 2).sum(0)
    return np.sort(np.argsort(-spread, kind="stable")[:max_genes])


def _pca_scores(
    data: PerturbationData,
    rows: np.ndarray,
    *,
    n_components: int,
    max_cells: int,
    max_genes: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``(len(rows), k)`` principal-component scores of the cells at file ``rows`` (sorted), the PCA fitted on a
    sample of at most ``max_cells`` of them; ``k`` = ``n_components`` or fewer when the sample or the genes are."""
    from sklearn.decomposition import PCA

    genes = _variable_genes(data, max_genes)
    sample = np.sort(rng.choice(rows, max_cells, replace=False)) if len(rows) > max_cells else rows
    fit = data.cells.dense(sample)[:, genes].astype(np.float64)
    k = min(n_components, len(genes), len(sample) - 1)
    pca = PCA(n_components=k, svd_solver="full" if min(fit.shape) <= 500 else "randomized", random_state=0)
    pca.fit(fit)
    scores = np.empty((len(rows), k))
    for where, block in data.cells.chunks(rows):
        scores[where] = pca.transform(to_dense(block)[:, genes].astype(np.float64))
    return scores


def _etest_row(cells: np.ndarray, control: np.ndarray, runs: int, rng: np.random.Generator) -> dict:
    """E-test statistics of one condition's ``(n_c, k)`` scores against the ``(n_ctrl, k)`` control's."""
    shift = cells.mean(0) - control.mean(0)
    energy = float(shift @ shift)
    noise = float(cells.var(0, ddof=1).sum() / len(cells) + control.var(0, ddof=1).sum() / len(control))
    return {
        "n_cells": len(cells),
        "n_control": len(control),
        "e_distance": 2 * energy,
        "e_distance_unbiased": 2 * (energy - noise),
        "signal_to_noise": energy / noise if noise > 0 else np.inf,
        "p_value": _permutation_pvalue(cells, control, 2 * energy, runs, rng),
    }


def _permutation_pvalue(
    cells: np.ndarray, control: np.ndarray, observed: float, runs: int, rng: np.random.Generator
) -> float:
    """``(1 + #{E* >= observed}) / (1 + runs)`` over ``runs`` random splits of the pooled cells into groups of the
    condition's and the control's sizes; each chunk of splits is one 0/1 selection matrix times the scores."""
    pooled = np.vstack([cells, control])
    n, n_x = len(pooled), len(cells)
    total = pooled.sum(0)
    exceed, done = 0, 0
    while done < runs:
        m = min(_PERMUTATION_CHUNK, runs - done)
        picked = np.argpartition(rng.random((m, n)), n_x - 1, axis=1)[:, :n_x]
        select = np.zeros((m, n))
        np.put_along_axis(select, picked, 1.0, axis=1)
        sums = select @ pooled
        shift = sums / n_x - (total - sums) / (n - n_x)
        exceed += int(np.sum(2 * np.einsum("ij,ij->i", shift, shift) >= observed * (1 - 1e-12)))
        done += m
    return (1 + exceed) / (1 + runs)


def effect_label(
    data: PerturbationData,
    *,
    strong_key: str | None = None,
    strong_above: float | None = None,
    obs: pd.DataFrame | None = None,
    **etest_options,
) -> EffectLabel | None:
    """The effect label of ``data``: the user's column when named (:func:`threshold_label`), else the E-test of
    single cells (:func:`etest_label`, with ``etest_options``); ``None`` for pseudo-bulk data without a column."""
    if (strong_key is None) != (strong_above is None):
        raise InputError(
            "`strong_key` and `strong_above` go together, e.g. strong_key=signal_to_noise strong_above=1.1"
        )
    if strong_key is not None:
        return threshold_label(data, strong_key, strong_above, obs=obs)
    if data.is_delta:
        return None
    return etest_label(data, **etest_options)
