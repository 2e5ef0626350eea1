"""Every figure of the package. Each plot function draws on ``ax=`` (a new figure when ``None``) and returns it;
:func:`save_figure` writes a figure atomically. Matplotlib runs on the Agg backend (no display needed).

"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gene_corpus.files import atomic_path

if TYPE_CHECKING:
    import pandas as pd

    from scouter_local.data.perturbation import PerturbationData
    from scouter_local.evaluation.results import Evaluation

_MARKERS = ("o", "s", "^", "D", "v", "P")


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` atomically (format from the suffix, ``png`` without one), then close it."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png", bbox_inches="tight")
    finally:
        pyplot().close(fig)
    return path


def _axes(ax, figsize: tuple[float, float]):
    return ax if ax is not None else pyplot().subplots(figsize=figsize)[1]


def top20(
    data: PerturbationData,
    condition: str,
    predictions: Mapping[str, np.ndarray],
    *,
    ax=None,
    scores: Mapping[str, float | None] | None = None,
    subgroup: str | None = None,
):
    """Observed change from control (grey bars) and each method's predicted change (markers) on the top-20 DE genes
    of one condition.

    Parameters
    ----------
    data
        Observed data (control mean, the condition's mean and DE genes).
    condition
        The condition drawn.
    predictions
        Method → ``(n_genes,)`` mean predicted profile of ``condition``.
    scores
        Method → NormMSE of this condition, shown in the legend.
    subgroup
        Shown in the title.
    """
    plt = pyplot()
    top = data.de_genes[condition]
    ax = _axes(ax, (max(7.5, 0.4 * len(top)), 4.2))
    control = data.control_mean()
    x = np.arange(len(top))
    ax.bar(x, data.condition_mean(condition)[top] - control[top], 0.75, color="#b0b0b0", label="observed")
    colours = plt.get_cmap("tab10").colors
    for i, (method, predicted) in enumerate(predictions.items()):
        score = (scores or {}).get(method)
        ax.scatter(
            x + (i - (len(predictions) - 1) / 2) * 0.12,
            np.asarray(predicted)[top] - control[top],
            s=26,
            marker=_MARKERS[i % len(_MARKERS)],
            color=colours[i % 10],
            edgecolor="black",
            linewidth=0.4,
            zorder=3,
            label=method if score is None else f"{method} (NormMSE {score:.2f})",
        )
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x, [data.genes[i] for i in top], rotation=90, fontsize=8)
    ax.set_xlim(-0.6, len(top) - 0.4)
    ax.set_ylabel("change from control", fontsize=9)
    ax.set_title(condition + (f" ({subgroup})" if subgroup else ""), fontsize=11)
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    return ax


def top20_panel(
    data: PerturbationData,
    conditions: Sequence[str],
    predictions: Mapping[str, Mapping[str, np.ndarray]],
    *,
    scores: Mapping[str, Mapping[str, float | None]] | None = None,
    subgroups: Mapping[str, str] | None = None,
):
    """A figure of :func:`top20` panels for up to six conditions (``predictions``: method → condition → profile)."""
    conditions = list(conditions)[:6]
    ncols = 2 if len(conditions) > 1 else 1
    nrows = max(1, int(np.ceil(len(conditions) / ncols)))
    fig, axes = pyplot().subplots(nrows, ncols, figsize=(7.5 * ncols, 4.2 * nrows), squeeze=False)
    for ax, cond in zip(axes.ravel(), conditions):
        top20(
            data,
            cond,
            {m: p[cond] for m, p in predictions.items()},
            ax=ax,
            scores={m: s.get(cond) for m, s in (scores or {}).items()},
            subgroup=(subgroups or {}).get(cond),
        )
    for ax in axes.ravel()[len(conditions) :]:
        ax.set_visible(False)
    fig.suptitle("Top-20 DE genes: observed (bars) vs predicted (markers)", fontsize=12)
    fig.tight_layout()
    return fig


def group_grid(evaluations: Mapping[str, Evaluation], *, metric: str = "normmse", ax=None, title: str = ""):
    """Method × group grid of a metric's mean (median below it), one row per labelled :class:`Evaluation`.

    NormMSE is green below 1 (better than no change) and red above, saturating at 0 and 2; the correlations and
    direction accuracy go from red (0) to green (1).
    """
    from matplotlib.colors import Normalize, TwoSlopeNorm

    from scouter_local.evaluation.results import GROUPS

    plt = pyplot()
    summaries = {label: e.summary for label, e in evaluations.items()}
    groups = [g for g in GROUPS if any(g in s.index for s in summaries.values())]
    means = np.array(
        [[s.at[g, f"{metric}_mean"] if g in s.index else np.nan for g in groups] for s in summaries.values()],
        dtype=float,
    ).reshape(len(summaries), len(groups))
    medians = np.array(
        [[s.at[g, f"{metric}_median"] if g in s.index else np.nan for g in groups] for s in summaries.values()],
        dtype=float,
    ).reshape(len(summaries), len(groups))
    counts = [max(int(s.at[g, "n"]) if g in s.index else 0 for s in summaries.values()) for g in groups]
    ax = _axes(ax, (1.9 * len(groups) + 2.5, 0.62 * len(summaries) + 1.8))
    if metric == "normmse":
        shown, norm, cmap, centre = np.clip(means, 0, 2), TwoSlopeNorm(vmin=0, vcenter=1, vmax=2), "RdYlGn_r", 1.0
    else:
        shown, norm, cmap, centre = np.clip(means, 0, 1), Normalize(0, 1), "RdYlGn", 0.5
    ax.imshow(
        np.ma.masked_invalid(shown), cmap=plt.get_cmap(cmap).with_extremes(bad="#eeeeee"), norm=norm, aspect="auto"
    )
    for i in range(means.shape[0]):
        for j in range(means.shape[1]):
            if np.isnan(means[i, j]):
                ax.text(j, i, "-", ha="center", va="center", fontsize=10, color="#777")
                continue
            dark = abs(shown[i, j] - centre) > 0.75 * centre
            ax.text(
                j,
                i,
                f"{means[i, j]:.2f}\n(median {medians[i, j]:.2f})",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if dark else "black",
            )
    ax.set_xticks(range(len(groups)), [f"{g}\n(n={n})" for g, n in zip(groups, counts)], fontsize=9)
    ax.set_yticks(range(len(summaries)), list(summaries), fontsize=10)
    ax.xaxis.tick_top()
    if title:
        ax.set_title(title, fontsize=11, pad=34)
    better = "lower is better; 1.0 = predicting no change" if metric == "normmse" else "higher is better"
    ax.set_xlabel(f"mean {metric} per condition ({better})", fontsize=9)
    return ax


def signal_bars(rows: pd.DataFrame, *, ax=None, title: str = "", label: str = "both"):
    """Real embeddings against their shuffled control: one bar pair per (set, method) row of ``rows`` (columns
    ``set, method, metric, real, shuffled, p_value, verdict``), the p-value above each pair; bars labelled by
    ``set``, ``method`` or ``both``."""
    ax = _axes(ax, (max(6.0, 1.1 * len(rows) + 2), 4.2))
    x = np.arange(len(rows))
    real = rows["real"].astype(float).to_numpy()
    shuffled = rows["shuffled"].astype(float).to_numpy()
    ax.bar(x - 0.2, real, 0.4, color="#2b7bba", label="real embeddings")
    ax.bar(x + 0.2, shuffled, 0.4, color="#bbbbbb", label="row-permuted (control)")
    for xi, r, s, p, v in zip(x, real, shuffled, rows["p_value"], rows["verdict"]):
        shown = "-" if p is None or np.isnan(p) else f"p<0.001\n{v}" if p < 0.001 else f"p={p:.3f}\n{v}"
        ax.text(xi, np.nanmax([r, s, 0]), shown, ha="center", va="bottom", fontsize=7)
    ax.set_ylim(0, 1.2 * max(np.nanmax(np.append(np.concatenate([real, shuffled]), 0)), 1e-3))
    names = {
        "set": rows["set"],
        "method": rows["method"],
        "both": [f"{s}\n{m}" for s, m in zip(rows["set"], rows["method"])],
    }[label]
    ax.set_xticks(x, list(names), fontsize=8, rotation=20, ha="right")
    metric = rows["metric"].iloc[0] if len(rows) else ""
    ax.set_ylabel(f"mean {metric}")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=11)
    return ax


def neighbour_quality_bars(quality: Mapping[str, Mapping], *, ax=None):
    """Share of a gene's top-k neighbours sharing a GO Biological Process term, per embedding set (bars), against
    random genes (black line)."""
    plt = pyplot()
    sets = list(quality)
    ax = _axes(ax, (max(4.0, 0.9 * len(sets) + 2), 4.2))
    xs = np.arange(len(sets))
    share = [quality[s].get("share_go_bp") for s in sets]
    colours = plt.get_cmap("tab10").colors
    ax.bar(xs, [np.nan if v is None else v for v in share], 0.6, color=[colours[i % 10] for i in range(len(sets))])
    ax.scatter(
        xs,
        [np.nan if quality[s].get("random_share_go_bp") is None else quality[s]["random_share_go_bp"] for s in sets],
        marker="_",
        s=600,
        color="black",
        zorder=3,
        label="random genes",
    )
    for xi, v in zip(xs, share):
        if v is not None:
            ax.text(xi, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    k = next((q.get("k") for q in quality.values() if q), "")
    ax.set_xticks(xs, sets, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(f"share of top-{k} neighbours sharing a GO BP term")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("Neighbour quality", fontsize=11)
    return ax


def precision_at_n(
    curves: Mapping[str, np.ndarray], *, base_rate: float, baseline: str | None = None, ax=None, title: str = ""
):
    """Precision among the top N of a ranking against N (one line per label of ``curves``: ``(n_max,)`` values for
    N = 1 … n_max), the base rate (a random order) as a dotted line, the ``baseline`` curve dashed in grey."""
    plt = pyplot()
    ax = _axes(ax, (6.0, 4.2))
    colours = plt.get_cmap("tab10").colors
    for i, (name, curve) in enumerate(curves.items()):
        n = np.arange(1, len(curve) + 1)
        if name == baseline:
            ax.plot(n, curve, color="#666666", linestyle="--", linewidth=1.4, label=name)
        else:
            ax.plot(n, curve, color=colours[i % 10], linewidth=1.8, label=name)
    ax.axhline(base_rate, color="black", linestyle=":", linewidth=1.0, label=f"base rate ({base_rate:.3f})")
    ax.set_xlabel("N top-ranked genes (per split)")
    ax.set_ylabel("share with a detectable effect")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(1, max((len(c) for c in curves.values()), default=1))
    return _legend_grid_title(ax, title)


def reliability_diagram(
    probabilities: Mapping[str, tuple[np.ndarray, np.ndarray]], *, n_bins: int = 10, ax=None, title: str = ""
):
    """Observed share of positives against the mean predicted probability per bin (``calibration_curve``, equal
    widths), one line per label of ``probabilities`` (``(labels, probabilities)``), marker area growing with the
    bin's rows, with the diagonal of perfect calibration; the axes end a little above the largest probability."""
    from scouter_local.evaluation.detection import calibration_bins

    plt = pyplot()
    ax = _axes(ax, (4.8, 4.5))
    colours = plt.get_cmap("tab10").colors
    top = 0.0
    for i, (name, (y, p)) in enumerate(probabilities.items()):
        observed, predicted, counts = calibration_bins(y, p, n_bins=n_bins)
        colour, marker = colours[i % 10], _MARKERS[i % len(_MARKERS)]
        ax.plot(predicted, observed, color=colour, linewidth=1.2, label=name)
        ax.scatter(predicted, observed, s=12 + 120 * np.sqrt(counts / counts.max()), color=colour, marker=marker)
        top = max(top, float(np.max(p)), float(np.max(observed)))
    top = min(1.0, 1.1 * top) or 1.0
    ax.plot([0, top], [0, top], color="black", linestyle=":", linewidth=1.0, label="perfect calibration")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("predicted probability (bin mean; marker area: genes in the bin)")
    ax.set_ylabel("observed share with an effect")
    return _legend_grid_title(ax, title)


def _legend_grid_title(ax, title: str):
    """A small legend, a light grid behind the data, and ``title`` where given; returns ``ax``."""
    ax.legend(fontsize=8)
    ax.grid(color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title, fontsize=11)
    return ax


#: At most this many per-condition top-20 plots are drawn by :func:`write_evaluation_plots`.
MAX_CONDITION_PLOTS = 12


def write_evaluation_plots(result: Evaluation, folder: str | os.PathLike) -> list[Path]:
    """For an ``evaluate`` result (model and baselines): ``top20_<condition>.png`` for the first
    :data:`MAX_CONDITION_PLOTS` conditions and ``subgroups_normmse.png`` (:func:`group_grid`) in ``folder``."""
    folder = Path(folder)
    runs = {result.method: result, **result.baselines}
    paths = []
    for cond in list(result.predictions)[:MAX_CONDITION_PLOTS]:
        ax = top20(
            result.data,
            cond,
            {m: r.predictions[cond] for m, r in runs.items()},
            scores={m: r.conditions.set_index("condition").at[cond, "normmse"] for m, r in runs.items()},
            subgroup=result.conditions.set_index("condition").at[cond, "subgroup"],
        )
        paths.append(save_figure(ax.figure, folder / f"top20_{cond.replace('+', '_')}.png", dpi=120))
    ax = group_grid(runs, title="mean NormMSE by subgroup")
    paths.append(save_figure(ax.figure, folder / "subgroups_normmse.png", dpi=120))
    return paths
