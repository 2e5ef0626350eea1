"""Tables of benchmark results: the printed plain-text table and the DataFrames reports show (method × group
metrics, real vs shuffled embeddings, the comparison of embedding sets).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from scouter_local.benchmarking.detection import DetectionResult
from scouter_local.data.splits import SUBGROUPS
from scouter_local.evaluation.metrics import METRICS, seed_sd
from scouter_local.evaluation.results import CEILING, GROUPS, STRONG
from scouter_local.reporting.document import format_value

if TYPE_CHECKING:
    from scouter_local.benchmarking.results import MethodResult

GROUP_HELP = {
    "overall": "all test conditions",
    "single": "single gene never seen in training",
    "single_seen": "single gene seen only inside a training combination",
    "combo_seen0": "combination, neither gene seen in training",
    "combo_seen1": "combination, one gene seen in training",
    "combo_seen2": "combination, both genes seen in training",
    STRONG: "conditions whose noise column marks a detectable effect",
}


_LABELS = {
    "normmse": "NormMSE",
    "pearson_delta_top20": "Pearson Δ top-20",
    "pearson_delta_all": "Pearson Δ all genes",
    "direction_top20": "direction top-20",
    "pearson_centred_top20": "Pearson centred top-20",
}


def _label(r: MethodResult, results: Sequence[MethodResult]) -> str:
    return r.method if len({x.set for x in results}) <= 1 else f"{r.set}: {r.method}"


def benchmark_frame(results: Sequence[MethodResult]) -> pd.DataFrame:
    """One row per method and group (``overall``, then each subgroup present, then ``strong``).

    Returns
    -------
    Columns ``set, method, group, n, NormMSE mean, NormMSE median, Pearson Δ top-20, Pearson Δ all genes,
    direction top-20, Pearson centred top-20`` (means over the test conditions pooled across seeds).
    """
    rows = []
    for r in results:
        for group, s in r.evaluation.summary.iterrows():
            rows.append(
                {
                    "set": r.set,
                    "method": r.method,
                    "group": group,
                    "n": int(s["n"]),
                    "NormMSE mean": s["normmse_mean"],
                    "NormMSE median": s["normmse_median"],
                    **{_LABELS[m]: s[f"{m}_mean"] for m in METRICS[1:]},
                }
            )
    return pd.DataFrame(rows)


def overview_frame(results: Sequence[MethodResult]) -> pd.DataFrame:
    """One row per method: overall NormMSE mean/median, Pearson Δ, direction, then mean NormMSE per subgroup.

    Returns
    -------
    Columns ``method, n, NormMSE mean, NormMSE median, Pearson Δ top-20, Pearson Δ all genes, direction top-20,
    Pearson centred top-20`` and ``NormMSE <group>`` for every other group with test conditions.
    """
    rows = []
    for r in results:
        s = r.evaluation.summary
        rows.append(
            {
                "method": _label(r, results),
                "n": int(s.at["overall", "n"]),
                "NormMSE mean": s.at["overall", "normmse_mean"],
                "NormMSE median": s.at["overall", "normmse_median"],
                **{_LABELS[m]: s.at["overall", f"{m}_mean"] for m in METRICS[1:]},
                **{f"NormMSE {g}": s.at[g, "normmse_mean"] for g in GROUPS[1:] if g in s.index},
            }
        )
    return pd.DataFrame(rows)


def signal_frame(results: Sequence[MethodResult]) -> pd.DataFrame:
    """Real against shuffled embeddings: one row per (set, method, block) with a signal test.

    Returns
    -------
    Columns ``set, method, block, metric, n, real, shuffled, delta, p_value, verdict``.
    """
    return pd.DataFrame(
        [
            {
                "set": r.set,
                "method": r.method,
                "block": block,
                **{k: s[k] for k in ("metric", "n", "real", "shuffled", "delta", "p_value", "verdict")},
            }
            for r in results
            for block, s in r.signal.items()
        ],
        columns=["set", "method", "block", "metric", "n", "real", "shuffled", "delta", "p_value", "verdict"],
    )


def comparison_table(
    results: Sequence[MethodResult], quality: Mapping[str, dict], *, block: str = "overall", text: bool = False
):
    """Per set and method on one block of conditions (``overall`` or ``strong``): NormMSE mean/median, Pearson Δ
    (top-20 DE genes and all genes: a pseudo-bulk screen's ceiling has only the latter), direction, the centred
    Pearson, the real-vs-shuffled test, the set's GO neighbour quality, and where the data have an effect label
    the set's effect detection (``effect AUROC``, ``effect AP``, ``effect shuffled AUROC``, ``effect p``: the
    effect model depends on the set, not on the method).

    Returns
    -------
    A DataFrame, or with ``text=True`` its aligned plain-text rendering (what ``compare-models`` prints).
    """
    labelled = any(r.detection is not None for r in results)
    rows = []
    for r in results:
        q = quality.get(r.set, {})
        if block not in r.evaluation.groups:
            continue
        s = r.evaluation.summary.loc[block]
        signal = r.signal.get(block, {})
        rows.append(
            {
                "set": r.set,
                "method": r.method,
                "block": block,
                "n": int(s["n"]),
                "NormMSE mean": s["normmse_mean"],
                "NormMSE median": s["normmse_median"],
                "Pearson Δ top-20": s["pearson_delta_top20_mean"],
                "Pearson Δ all genes": s["pearson_delta_all_mean"],
                "direction top-20": s["direction_top20_mean"],
                "Pearson centred top-20": s["pearson_centred_top20_mean"],
                "shuffled": signal.get("shuffled"),
                "delta vs shuffled": signal.get("delta"),
                "p": signal.get("p_value"),
                "verdict": signal.get("verdict", "-" if r.method != CEILING else ""),
                f"GO-BP share top-{q.get('k', '')}": q.get("share_go_bp"),
                "random share": q.get("random_share_go_bp"),
                "enrichment": q.get("enrichment"),
                **(_effect_cells(r.detection) if labelled else {}),
            }
        )
    frame = pd.DataFrame(rows)
    if not text:
        return frame
    return frame.to_string(
        index=False,
        formatters={c: format_value for c in frame.columns if c not in ("set", "method", "block", "verdict")},
    )


def _effect_cells(block: dict | None) -> dict:
    """The comparison table's effect-detection columns of a set's block (empty cells without one)."""
    block = block or {}
    return {
        "effect AUROC": block.get("auroc"),
        "effect AP": block.get("average_precision"),
        "effect shuffled AUROC": (block.get("shuffled") or {}).get("auroc"),
        "effect p": block.get("p_value"),
    }


def _metric_cells(row: pd.Series) -> str:
    """``n``, NormMSE mean and median, mean Pearson Δ top-20 / all, mean direction accuracy of one summary row."""
    return (
        f"{int(row['n']):>4} {format_value(row['normmse_mean']):>12} {format_value(row['normmse_median']):>7} "
        f"{format_value(row['pearson_delta_top20_mean']):>6} {format_value(row['pearson_delta_all_mean']):>6} "
        f"{format_value(row['direction_top20_mean']):>6}"
    )


def _gap_cell(r: MethodResult, block: str, metric: str) -> str:
    value = r.gap_closed.get(block, {}).get(metric)
    return f"{value:>+9.2f}" if value is not None else f"{'-':>9}"


_GAP_LABEL = {"normmse": "gap NMSE", "pearson_delta_top20": "gap PΔ20", "pearson_delta_all": "gap PΔall"}


def gap_metric(results: Sequence[MethodResult], signal_metric: str) -> str:
    """The metric whose gap to the ceiling the table shows: the signal metric, or Pearson Δ on all genes where the
    ceiling has only that one (pseudo-bulk deltas with a noise column)."""
    ceiling = next((r for r in results if r.method == CEILING), None)
    if ceiling is not None and ceiling.evaluation.mean(signal_metric) is None:
        return "pearson_delta_all"
    return signal_metric


_METRICS_HEAD = f"{'n':>4} {'NormMSE mean':>12} {'median':>7} {'PΔ20':>6} {'PΔall':>6} {'dir20':>6}"


def format_table(
    results: Sequence[MethodResult],
    *,
    signal_metric: str,
    notes: Sequence[str] = (),
    detection: Sequence[DetectionResult] = (),
) -> str:
    """Plain-text table: one line per (set, method) with the noise ceiling among them; summaries with a ``strong``
    group add a second block on the strong conditions; then the real-vs-shuffled embedding block, the notes, and
    with ``detection`` the effect-detection block (:func:`detection_lines`)."""
    gap = gap_metric(results, signal_metric)
    lines = [*_method_lines(results, gap), *_strong_lines(results, gap), *_signal_lines(results)]
    lines.append(
        "sd/seed: standard deviation of the per-seed mean NormMSE (the seeds' spread); gap: share of the gap "
        f"from train_mean to the noise ceiling closed on mean {gap}"
    )
    lines += list(notes)
    if detection:
        lines += ["", *detection_lines(detection)]
    return "\n".join(lines)


def _head(head: str, *above: str) -> list[str]:
    """A block's lines up to its first row: ``above``, the column heads, a rule as wide."""
    return [*above, head, "-" * len(head)]


def _method_lines(results: Sequence[MethodResult], gap: str) -> list[str]:
    """Every (set, method) on all test conditions: metrics, spread over seeds, gap closed, mean NormMSE per
    subgroup, fit seconds and peak memory."""
    head = (
        f"{'set':<18} {'method':<14} {_METRICS_HEAD} {'sd/seed':>7} {_GAP_LABEL[gap]:>9} "
        + " ".join(f"{g:>12}" for g in SUBGROUPS)
        + f" {'fit s (min-max)':>16} {'RSS MiB':>8}"
    )
    lines = _head(head)
    for r in results:
        summary = r.evaluation.summary
        sub = " ".join(
            f"{format_value(summary.at[g, 'normmse_mean'] if g in summary.index else None):>12}" for g in SUBGROUPS
        )
        fit = f"{min(x['fit_seconds'] for x in r.runs):.1f}-{max(x['fit_seconds'] for x in r.runs):.1f}"
        lines.append(
            f"{r.set:<18} {r.method:<14} {_metric_cells(summary.loc['overall'])} "
            f"{format_value(seed_sd(r.seed_means('normmse'))):>7} {_gap_cell(r, 'overall', gap)} {sub} "
            f"{fit:>16} {max(x['peak_rss_mib'] for x in r.runs):>8.0f}"
        )
    return lines


def _strong_lines(results: Sequence[MethodResult], gap: str) -> list[str]:
    """The methods with a ``strong`` group, on the strong conditions (none without)."""
    strong = [r for r in results if STRONG in r.evaluation.groups]
    if not strong:
        return []
    rule = strong[0].evaluation.info["strong_rule"]
    lines = _head(
        f"{'set':<18} {'method':<14} {_METRICS_HEAD} {_GAP_LABEL[gap]:>9}",
        "",
        f"strong targets: mean obs[{rule['key']!r}] > {rule['above']:g}",
    )
    for r in strong:
        lines.append(
            f"{r.set:<18} {r.method:<14} {_metric_cells(r.evaluation.summary.loc[STRONG])} {_gap_cell(r, STRONG, gap)}"
        )
    return lines


def _signal_lines(results: Sequence[MethodResult]) -> list[str]:
    """Real against shuffled embeddings: one line per (set, method, block) tested (none without a test)."""
    tested = [(r, block, s) for r in results for block, s in r.signal.items()]
    if not tested:
        return []
    lines = _head(
        f"{'set':<18} {'method':<14} {'block':<8} {'metric':<20} {'real':>7} {'shuffled':>8} {'delta':>7} "
        f"{'p':>7}  verdict",
        "",
        f"real vs shuffled embeddings ({len(tested[0][0].shuffled)} row permutations of the screen's genes; paired "
        "one-sided sign-flip test over test conditions; delta > 0 = real better)",
    )
    for r, block, s in tested:
        lines.append(
            f"{r.set:<18} {r.method:<14} {block:<8} {s['metric']:<20} {format_value(s['real']):>7} "
            f"{format_value(s['shuffled']):>8} {format_value(s['delta'], 3):>7} "
            f"{format_value(s['p_value'], 4):>7}  {s['verdict']}"
        )
    return lines


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.1f}×" if value is not None and base else "-"


def detection_frame(detection: Sequence[DetectionResult]) -> pd.DataFrame:
    """Effect detection per set: the effect model's row, the embedding alone's (where the model keeps the
    well-studied features), then the well-studied baseline's.

    Returns
    -------
    Columns ``set, model, n, positives, base rate, AUROC, AUROC sd, AP, AP × base rate, P@10%, P@25, P@50, Brier,
    base-rate Brier, ECE, ECE floor, shuffled AUROC, p, verdict, vs well-studied ΔAUROC, vs well-studied p``
    (the last five empty for the baseline); no row for a set without a block.
    """
    rows = []
    for d in detection:
        for name, block in d.blocks():
            versus = block.get("vs_well_studied") or {}
            rows.append(
                {
                    "set": d.set,
                    "model": name,
                    "n": block["n"],
                    "positives": block["positives"],
                    "base rate": block["base_rate"],
                    "AUROC": block["auroc"],
                    "AUROC sd": block["auroc_sd"],
                    "AP": block["average_precision"],
                    "AP × base rate": _ratio(block["average_precision"], block["base_rate"]),
                    **{f"P@{k}": v for k, v in block["precision_at"].items()},
                    "Brier": block["brier"],
                    "base-rate Brier": block["brier_base_rate"],
                    "ECE": block["ece"],
                    "ECE floor": block["ece_floor"],
                    "shuffled AUROC": (block["shuffled"] or {}).get("auroc"),
                    "p": block["p_value"],
                    "verdict": block["verdict"] or "",
                    "vs well-studied ΔAUROC": versus.get("delta_auroc"),
                    "vs well-studied p": versus.get("p_value"),
                }
            )
    return pd.DataFrame(rows)


def ranked_by_detection(detection: Sequence[DetectionResult]) -> list[DetectionResult]:
    """The sets with a detection block, best effect-model AUROC first (ranked as knowledge sources)."""
    return sorted((d for d in detection if d.model is not None), key=lambda d: -(d.model["auroc"] or 0.0))


def detection_lines(detection: Sequence[DetectionResult]) -> list[str]:
    """The printed effect-detection block: per set (best effect-model AUROC first: the sets ranked as knowledge
    sources) the effect model's line and the well-studied baseline's, the knowledge's margin over the baseline, a
    legend, and why a set has no block."""
    shown = ranked_by_detection(detection)
    lines = []
    if shown:
        first = shown[0].model
        lines += _head(
            f"{'set':<18} {'model':<14} {'n':>5} {'pos':>4} {'AUROC (sd)':>14} {'AP (×base)':>14} {'P@25':>6} "
            f"{'Brier (base rate)':>17} {'ECE [floor]':>14} {'shuffled':>8} {'p':>7}  verdict",
            f"effect detection: {first['label']} on the test single genes ({_count(len(shown[0].seeds), 'split')}, "
            f"~{first['ranked_per_split']} ranked per split; the effect model beside "
            f"{_count(len(shown[0].shuffled), 'row permutation')} of "
            "the set and the well-studied baseline)",
        )
        lines += [_detection_line(d.set, name, block) for d in shown for name, block in d.blocks()]
        versus = [(d.set, d.model["vs_well_studied"]) for d in shown if "vs_well_studied" in d.model]
        if versus:
            lines.append(
                "knowledge over well-studied (one-sided DeLong, AUROC): "
                + "; ".join(
                    f"{name} {format_value(v['delta_auroc'], 3)} (p {format_value(v['p_value'], 4)})"
                    for name, v in versus
                )
            )
        lines.append(
            "AUROC, AP: mean over splits; P@25: share with an effect among each split's 25 top-ranked genes; Brier, "
            "ECE (10 equal-width bins; floor: a perfectly calibrated model's) on all test rows; p: the larger of "
            "DeLong's and the shuffled copies' t-test"
        )
        if any("embedding_only" in d.model for d in shown):
            lines.append(
                "the effect model kept the well-studied features (cross-validation chose it), and its shuffled copies "
                "keep them: they test what the embedding adds to them; 'embedding only' is the embedding alone, "
                "whose shuffled copies test whether it carries any signal at all"
            )
    lines += [f"no effect detection on set {d.set}: {d.note}" for d in detection if d.model is None]
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _detection_line(set_name: str, model: str, b: dict) -> str:
    auroc = f"{format_value(b['auroc'])} ({format_value(b['auroc_sd'])})"
    ap = f"{format_value(b['average_precision'])} ({_ratio(b['average_precision'], b['base_rate'])})"
    brier = f"{format_value(b['brier'], 4)} ({format_value(b['brier_base_rate'], 4)})"
    ece = f"{format_value(b['ece'])} [{format_value(b['ece_floor'])}]"
    shuffled = format_value((b["shuffled"] or {}).get("auroc"))
    return (
        f"{set_name:<18} {model:<14} {b['n']:>5} {b['positives']:>4} {auroc:>14} {ap:>14} "
        f"{format_value(b['precision_at'].get('25')):>6} {brier:>17} {ece:>14} {shuffled:>8} "
        f"{format_value(b['p_value'], 4):>7}  {b['verdict'] or ''}"
    ).rstrip()
