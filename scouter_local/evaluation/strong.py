"""The ``strong`` group: conditions whose numeric ``obs`` column (e.g. ``signal_to_noise``) exceeds a threshold."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from scouter_local.data.read import obs_condition_values, read_obs_column
from scouter_local.evaluation.results import STRONG

__all__ = ["StrongTargets", "obs_condition_values", "read_obs_column"]


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
