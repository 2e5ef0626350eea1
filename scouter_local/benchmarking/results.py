"""One (set, method) of a benchmark pooled over its seeds, with its signal test."""

from __future__ import annotations

import dataclasses

from scouter_local.evaluation.ceiling import gap_closed
from scouter_local.evaluation.metrics import METRICS
from scouter_local.evaluation.results import CEILING, STRONG, Evaluation
from scouter_local.evaluation.signal import signal_test


@dataclasses.dataclass
class MethodResult:
    """One (set, method) of a benchmark, pooled over its seeds.

    Attributes
    ----------
    set, method
        Embedding set and method (``ceiling`` for the noise ceiling).
    runs
        Per seed: the run as written to ``runs/*.json``.
    per_seed
        Per seed: its :class:`Evaluation`.
    evaluation
        The test conditions of all seeds pooled (``seed`` column).
    shuffled
        Per permutation: the shuffled control pooled the same way (empty without shuffles).
    signal
        Block (``overall``, ``strong``) → :func:`~scouter_local.evaluation.signal_test` result.
    gap_closed
        Block → metric → share of the gap from ``train_mean`` to the ceiling this method closes.
    detection
        The set's effect-detection block (the effect model depends on the set, not on this method; see
        :class:`~scouter_local.benchmarking.detection.DetectionResult`), where the data have an effect label.
    """

    set: str
    method: str
    runs: list[dict]
    per_seed: list[Evaluation]
    evaluation: Evaluation
    shuffled: list[Evaluation] = dataclasses.field(default_factory=list)
    signal: dict[str, dict] = dataclasses.field(default_factory=dict)
    gap_closed: dict[str, dict] = dataclasses.field(default_factory=dict)
    detection: dict | None = None

    @classmethod
    def pool(cls, runs: list[dict], *, signal_metric: str) -> MethodResult:
        seeds = [r["seed"] for r in runs]
        per_seed = [Evaluation.from_dict(r) for r in runs]
        evaluation = Evaluation.pooled(per_seed, seeds=seeds)
        n_shuffles = min((len(r.get("shuffled", [])) for r in runs), default=0)
        shuffled = [
            Evaluation.pooled([Evaluation.from_rows(r["shuffled"][k], method=r["method"]) for r in runs], seeds=seeds)
            for k in range(n_shuffles)
        ]
        result = cls(runs[0]["set"], runs[0]["method"], runs, per_seed, evaluation, shuffled)
        if shuffled:
            result.signal = {
                block: signal_test(evaluation, shuffled, metric=signal_metric, group=block)
                for block in ("overall", STRONG)
                if block in evaluation.groups
            }
        return result

    def seed_means(self, metric: str) -> list[float | None]:
        return [e.mean(metric) for e in self.per_seed]

    def to_json(self) -> dict:
        """The ``summary.json`` entry: the pooled evaluation (no conditions), ``set``, ``fit_seconds``,
        ``peak_rss_mib``, ``seeds``, and where computed ``signal``, ``gap_closed`` and ``detection``."""
        out = {
            **self.evaluation.to_dict(conditions=False),
            "set": self.set,
            "fit_seconds": [r["fit_seconds"] for r in self.runs],
            "peak_rss_mib": [r["peak_rss_mib"] for r in self.runs],
            "seeds": {
                "seed": [r["seed"] for r in self.runs],
                **{m: self.seed_means(m) for m in ("normmse", "pearson_delta_top20")},
            },
        }
        if self.signal:
            out["signal"] = self.signal
        if self.gap_closed:
            out["gap_closed"] = self.gap_closed
        if self.detection is not None:
            out["detection"] = self.detection
        return out


def add_gaps(results: list[MethodResult]) -> None:
    """Fill ``gap_closed`` of each method of a set that has both ``train_mean`` and a ``ceiling`` entry."""
    for set_name in dict.fromkeys(r.set for r in results):
        of_set = {r.method: r for r in results if r.set == set_name}
        base, top = of_set.get("train_mean"), of_set.get(CEILING)
        if base is None or top is None:
            continue
        for r in of_set.values():
            if r.method == CEILING:
                continue
            r.gap_closed = {
                block: {
                    m: gap_closed(
                        r.evaluation.mean(m, block), base.evaluation.mean(m, block), top.evaluation.mean(m, block)
                    )
                    for m in METRICS
                }
                for block in ("overall", STRONG)
                if block in r.evaluation.groups
            }
