"""The ``strong`` group: conditions whose numeric ``obs`` column (e.g. ``signal_to_noise``) exceeds a threshold."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from gene_corpus.errors import InputError
from scouter_local.data.perturbation import PerturbationData
from scouter_local.data.read import condition_means, numeric_obs_column
from scouter_local.evaluation.results import STRONG


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
