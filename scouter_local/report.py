"""Reports of the demo and of ``compare-models``: Markdown (PNG plots linked) and HTML (plots embedded), same content.

A :class:`Document` is a list of blocks (headings, paragraphs, tables, images, code) rendered to both formats; the
plots are PNG files in ``plots/`` beside the report. Tables come from :func:`benchmark_frame` (method ×
subgroup NormMSE mean/median, Pearson Δ, direction), :func:`published_frame` (the Scouter authors' published
Norman numbers, a different split and setting) and :func:`comparison_table`.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gene_corpus.atomic import atomic_path, write_text_atomic
from scouter_local.data import SUBGROUPS, PerturbationData

if TYPE_CHECKING:
    from scouter_local.demo import ComparisonResult, DemoResult

GROUPS = ("overall", *SUBGROUPS)
GROUP_HELP = {
    "overall": "all test conditions",
    "single": "single gene never seen in training",
    "single_seen": "single gene seen only inside a training combination",
    "combo_seen0": "combination, neither gene seen in training",
    "combo_seen1": "combination, one gene seen in training",
    "combo_seen2": "combination, both genes seen in training",
}
PUBLISHED_SUBGROUPS = {"single": "single", "seen0": "combo_seen0", "seen1": "combo_seen1", "seen2": "combo_seen2"}
ATTRIBUTION = ("Data: Norman et al. 2019 (Science) via the PerturBench fixture (BSD-3-Clause); gene texts NCBI RefSeq + "
               "UniProt (CC BY 4.0) as packaged by GenePT/Scouter (MIT); GO (CC BY 4.0) via Bioconductor org.Hs.eg.db; "
               "published numbers: Zhu & Li, Nat Comput Sci 2025.")


def _fmt(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "-"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{x:.{digits}f}"


# ---------------------------------------------------------------------------------------------- tables
def _stat(block: Mapping, metric: str, stat: str):
    return (block.get(metric) or {}).get(stat)


def benchmark_frame(summaries: Sequence[dict]) -> pd.DataFrame:
    """One row per method and group (``overall`` then each subgroup present).

    Returns
    -------
    Columns ``set, method, group, n, NormMSE mean, NormMSE median, Pearson Δ top-20, Pearson Δ all genes,
    direction top-20`` (means over test conditions pooled across seeds).
    """
    rows = []
    for s in summaries:
        blocks = [("overall", {"n": s["n_conditions"], **s["overall"]})]
        blocks += [(g, s["subgroups"][g]) for g in SUBGROUPS if g in s["subgroups"]]
        for group, b in blocks:
            rows.append({"set": s.get("set", ""), "method": s["method"], "group": group, "n": b["n"],
                         "NormMSE mean": _stat(b, "normmse", "mean"), "NormMSE median": _stat(b, "normmse", "median"),
                         "Pearson Δ top-20": _stat(b, "pearson_delta_top20", "mean"),
                         "Pearson Δ all genes": _stat(b, "pearson_delta_all", "mean"),
                         "direction top-20": _stat(b, "direction_top20", "mean")})
    return pd.DataFrame(rows)


def overview_frame(summaries: Sequence[dict]) -> pd.DataFrame:
    """One row per method: overall NormMSE mean/median, Pearson Δ, direction, then mean NormMSE per subgroup.

    Returns
    -------
    Columns ``method, n, NormMSE mean, NormMSE median, Pearson Δ top-20, Pearson Δ all genes, direction top-20``
    and ``NormMSE <subgroup>`` for every subgroup with test conditions.
    """
    long = benchmark_frame(summaries)
    label = long["method"] if long["set"].nunique() <= 1 else long["set"] + ": " + long["method"]
    long = long.assign(method=label)
    overall = long[long["group"] == "overall"].drop(columns=["set", "group"]).set_index("method")
    per_group = long[long["group"] != "overall"].pivot(index="method", columns="group", values="NormMSE mean")
    per_group = per_group[[g for g in SUBGROUPS if g in per_group.columns]]
    per_group.columns = [f"NormMSE {g}" for g in per_group.columns]
    return overall.join(per_group).loc[list(dict.fromkeys(label))].reset_index()


def published_frame(path: str | os.PathLike) -> pd.DataFrame:
    """The Scouter authors' per-condition Norman results summarised per method and subgroup.

    Parameters
    ----------
    path
        ``reference/scouter_published/norman.csv`` (columns ``NormMSE, 1-PCC, split, subgroup, Method``).

    Returns
    -------
    Columns ``method, group, n, NormMSE mean, NormMSE median, Pearson Δ top-20`` (= 1 − mean of ``1-PCC``),
    groups renamed to this project's subgroup names.
    """
    table = pd.read_csv(path)
    table["group"] = table["subgroup"].map(PUBLISHED_SUBGROUPS).fillna(table["subgroup"])
    rows = []
    for method, frame in table.groupby("Method", sort=False):
        for group, part in [("overall", frame), *((g, frame[frame["group"] == g]) for g in SUBGROUPS)]:
            if len(part):
                rows.append({"method": method, "group": group, "n": len(part),
                             "NormMSE mean": float(part["NormMSE"].mean()),
                             "NormMSE median": float(part["NormMSE"].median()),
                             "Pearson Δ top-20": float(1 - part["1-PCC"].mean())})
    return pd.DataFrame(rows)


def comparison_table(summaries: Sequence[dict], quality: Mapping[str, dict], *, text: bool = False):
    """Per set and method: overall NormMSE mean/median, Pearson Δ, direction and the set's GO neighbour quality.

    Returns
    -------
    A DataFrame, or with ``text=True`` its aligned plain-text rendering (what ``compare-models`` prints).
    """
    rows = []
    for s in summaries:
        q = quality.get(s["set"], {})
        rows.append({"set": s["set"], "method": s["method"], "n": s["n_conditions"],
                     "NormMSE mean": _stat(s["overall"], "normmse", "mean"),
                     "NormMSE median": _stat(s["overall"], "normmse", "median"),
                     "Pearson Δ top-20": _stat(s["overall"], "pearson_delta_top20", "mean"),
                     "direction top-20": _stat(s["overall"], "direction_top20", "mean"),
                     f"GO-BP share top-{q.get('k', '')}": q.get("share_go_bp"),
                     "random share": q.get("random_share_go_bp"), "enrichment": q.get("enrichment"),
                     "genes scored": q.get("genes")})
    frame = pd.DataFrame(rows)
    if not text:
        return frame
    return frame.to_string(index=False, formatters={c: _fmt for c in frame.columns if c not in ("set", "method")})


# ---------------------------------------------------------------------------------------------- document
@dataclass(frozen=True)
class _Block:
    kind: str
    content: object
    caption: str = ""


class Document:
    """A report built block by block and written as Markdown and HTML.

    Parameters
    ----------
    title
        Page title (first heading).
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self.blocks: list[_Block] = []

    def heading(self, text: str) -> None:
        self.blocks.append(_Block("heading", text))

    def paragraph(self, text: str) -> None:
        """A paragraph; ``**bold**`` and `` `code` `` are rendered in both formats."""
        self.blocks.append(_Block("paragraph", text))

    def bullets(self, items: Sequence[str]) -> None:
        self.blocks.append(_Block("bullets", list(items)))

    def table(self, frame: pd.DataFrame, caption: str = "") -> None:
        """A table; float cells are shown with 3 decimals, missing values as ``-``."""
        self.blocks.append(_Block("table", frame, caption))

    def image(self, path: Path, caption: str) -> None:
        self.blocks.append(_Block("image", Path(path), caption))

    def code(self, text: str) -> None:
        self.blocks.append(_Block("code", text))

    # -- rendering ---------------------------------------------------------------------------------------
    @staticmethod
    def _cells(frame: pd.DataFrame) -> list[list[str]]:
        return [[v if isinstance(v, str) else _fmt(v) for v in row] for row in frame.itertuples(index=False)]

    def to_markdown(self, folder: Path) -> str:
        lines = [f"# {self.title}", ""]
        for b in self.blocks:
            if b.kind == "heading":
                lines += [f"## {b.content}", ""]
            elif b.kind == "paragraph":
                lines += [str(b.content), ""]
            elif b.kind == "bullets":
                lines += [f"- {item}" for item in b.content] + [""]
            elif b.kind == "table":
                frame = b.content
                if b.caption:
                    lines += [f"*{b.caption}*", ""]
                esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
                lines.append("| " + " | ".join(esc(c) for c in frame.columns) + " |")
                lines.append("|" + "|".join("---" if frame[c].dtype == object else "---:" for c in frame.columns) + "|")
                lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in self._cells(frame)]
                lines.append("")
            elif b.kind == "image":
                lines += [f"![{b.caption}]({os.path.relpath(b.content, folder)})", "", f"*{b.caption}*", ""]
            elif b.kind == "code":
                lines += ["```", str(b.content), "```", ""]
        return "\n".join(lines)

    @staticmethod
    def _inline(text: str) -> str:
        import re

        out = html.escape(text)
        out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
        return re.sub(r"`(.+?)`", r"<code>\1</code>", out)

    def to_html(self) -> str:
        parts = [f"<h1>{html.escape(self.title)}</h1>"]
        for b in self.blocks:
            if b.kind == "heading":
                parts.append(f"<h2>{html.escape(str(b.content))}</h2>")
            elif b.kind == "paragraph":
                parts.append(f"<p>{self._inline(str(b.content))}</p>")
            elif b.kind == "bullets":
                parts.append("<ul>" + "".join(f"<li>{self._inline(i)}</li>" for i in b.content) + "</ul>")
            elif b.kind == "table":
                frame = b.content
                numeric = [frame[c].dtype != object for c in frame.columns]
                head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
                body = "".join("<tr>" + "".join(f"<td class='{'num' if n else 'txt'}'>{html.escape(v)}</td>"
                                                for v, n in zip(row, numeric)) + "</tr>" for row in self._cells(frame))
                caption = f"<caption>{self._inline(b.caption)}</caption>" if b.caption else ""
                parts.append(f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif b.kind == "image":
                data = base64.b64encode(Path(b.content).read_bytes()).decode()
                parts.append(f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(b.caption)}'>"
                             f"<figcaption>{self._inline(b.caption)}</figcaption></figure>")
            elif b.kind == "code":
                parts.append(f"<pre>{html.escape(str(b.content))}</pre>")
        style = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
                 "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;"
                 "padding:3px 8px}th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}"
                 "caption{caption-side:top;text-align:left;font-style:italic;padding:4px 0}img{max-width:100%}"
                 "figcaption{font-style:italic;margin-bottom:1.5em}pre{background:#f6f6f6;padding:8px;overflow-x:auto}")
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
                f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")

    def write(self, folder: str | os.PathLike, stem: str = "report") -> dict[str, Path]:
        """Write ``<stem>.md`` and ``<stem>.html`` into ``folder`` (each through a temporary file)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"markdown": folder / f"{stem}.md", "html": folder / f"{stem}.html"}
        for kind, path in paths.items():
            write_text_atomic(path, self.to_markdown(folder) if kind == "markdown" else self.to_html())
        return paths


# ---------------------------------------------------------------------------------------------- plots
#: ``Figure.savefig`` keywords of the report's figures.
_SAVEFIG = {"dpi": 110, "format": "png", "bbox_inches": "tight"}


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, **savefig) -> Path:
    """Write ``fig`` to ``path`` atomically with ``Figure.savefig(**savefig)``, then close it; return ``path``.

    The format defaults to the suffix of ``path`` (``png`` without one), not that of the temporary file.
    """
    savefig.setdefault("format", path.suffix.lstrip(".") or "png")
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, **savefig)
    finally:
        pyplot().close(fig)
    return path


def plot_normmse_grid(summaries: Sequence[dict], path: str | os.PathLike, *, title: str) -> Path:
    """Method × subgroup grid of mean NormMSE (median below it); green below 1 (better than no change), red above.

    Colours saturate at 0 and 2; every cell shows its numbers, so outliers stay readable.
    """
    from matplotlib.colors import TwoSlopeNorm

    plt = pyplot()
    groups = [g for g in GROUPS if g == "overall" or any(g in s["subgroups"] for s in summaries)]
    labels = [f"{s.get('set', '')}: {s['method']}" if len({x.get('set') for x in summaries}) > 1 else s["method"]
              for s in summaries]
    means = np.full((len(summaries), len(groups)), np.nan)
    medians = np.full_like(means, np.nan)
    counts = []
    for j, g in enumerate(groups):
        counts.append(summaries[0]["n_conditions"] if g == "overall" else
                      max((s["subgroups"].get(g, {}).get("n", 0) for s in summaries), default=0))
        for i, s in enumerate(summaries):
            block = s["overall"] if g == "overall" else s["subgroups"].get(g)
            if block:
                means[i, j] = _stat(block, "normmse", "mean") if _stat(block, "normmse", "mean") is not None else np.nan
                medians[i, j] = (_stat(block, "normmse", "median") if _stat(block, "normmse", "median") is not None
                                 else np.nan)
    fig, ax = plt.subplots(figsize=(1.9 * len(groups) + 2.5, 0.62 * len(summaries) + 1.8))
    cmap = plt.get_cmap("RdYlGn_r").with_extremes(bad="#eeeeee")
    ax.imshow(np.ma.masked_invalid(np.clip(means, 0, 2)), cmap=cmap, norm=TwoSlopeNorm(vmin=0, vcenter=1, vmax=2),
              aspect="auto")
    for i in range(means.shape[0]):
        for j in range(means.shape[1]):
            if np.isnan(means[i, j]):
                ax.text(j, i, "-", ha="center", va="center", fontsize=10, color="#777")
                continue
            dark = abs(min(means[i, j], 2) - 1) > 0.75
            ax.text(j, i, f"{means[i, j]:.2f}\n(median {medians[i, j]:.2f})", ha="center", va="center",
                    fontsize=9, color="white" if dark else "black")
    ax.set_xticks(range(len(groups)), [f"{g}\n(n={n})" for g, n in zip(groups, counts)], fontsize=9)
    ax.set_yticks(range(len(labels)), labels, fontsize=10)
    ax.xaxis.tick_top()
    ax.set_title(title, fontsize=11, pad=34)
    ax.set_xlabel("mean NormMSE per test condition (lower is better; 1.0 = predicting no change)", fontsize=9)
    return save_figure(fig, Path(path), **_SAVEFIG)


def plot_top20_panel(data: PerturbationData, conditions: Sequence[str], predictions: Mapping[str, Mapping[str, np.ndarray]],
                     path: str | os.PathLike, *, scores: Mapping[str, Mapping[str, float | None]] | None = None,
                     subgroups: Mapping[str, str] | None = None) -> Path:
    """Observed change (grey bars) and each method's predicted change (markers) on the top-20 DE genes of a few
    test conditions, one panel per condition.

    Parameters
    ----------
    data
        Observed data with the control cells and the conditions' DE genes.
    conditions
        Conditions to draw (at most 6 are drawn).
    predictions
        Method → condition → ``(n_genes,)`` mean predicted profile.
    scores
        Method → condition → NormMSE, shown in the legend of each panel.
    subgroups
        Condition → subgroup, shown in the panel title.
    """
    plt = pyplot()
    conditions = list(conditions)[:6]
    ncols = 2 if len(conditions) > 1 else 1
    nrows = int(np.ceil(len(conditions) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.5 * ncols, 4.2 * nrows), squeeze=False)
    control = data.control_mean()
    markers = ("o", "s", "^", "D", "v", "P")
    colours = plt.get_cmap("tab10").colors
    methods = list(predictions)
    for ax, cond in zip(axes.ravel(), conditions):
        top = data.de_genes[cond]
        x = np.arange(len(top))
        ax.bar(x, data.condition_mean(cond)[top] - control[top], 0.75, color="#b0b0b0", label="observed")
        for i, m in enumerate(methods):
            offset = (i - (len(methods) - 1) / 2) * 0.12
            score = (scores or {}).get(m, {}).get(cond)
            label = m if score is None else f"{m} (NormMSE {score:.2f})"
            ax.scatter(x + offset, np.asarray(predictions[m][cond])[top] - control[top], s=26, marker=markers[i % 6],
                       color=colours[i % 10], edgecolor="black", linewidth=0.4, zorder=3, label=label)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(x, [data.genes[i] for i in top], rotation=90, fontsize=8)
        ax.set_xlim(-0.6, len(top) - 0.4)
        ax.set_ylabel("change from control (log1p)", fontsize=9)
        sub = f" ({subgroups[cond]})" if subgroups and cond in subgroups else ""
        ax.set_title(f"{cond}{sub}", fontsize=11)
        ax.legend(fontsize=8, loc="best", framealpha=0.85)
        ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
        ax.set_axisbelow(True)
    for ax in axes.ravel()[len(conditions):]:
        ax.set_visible(False)
    fig.suptitle("Top-20 DE genes of test conditions: observed (bars) vs predicted (markers)", fontsize=12)
    fig.tight_layout()
    return save_figure(fig, Path(path), **_SAVEFIG)


def plot_comparison(summaries: Sequence[dict], quality: Mapping[str, dict], path: str | os.PathLike) -> Path:
    """Left: mean NormMSE per method, one bar per embedding set (median as a dot). Right: GO-BP neighbour share
    per set against random genes."""
    plt = pyplot()
    sets = list(dict.fromkeys(s["set"] for s in summaries))
    methods = list(dict.fromkeys(s["method"] for s in summaries))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(max(9, 1.6 * len(methods) + 6), 4.3),
                                 gridspec_kw={"width_ratios": [max(2, len(methods)), max(1, len(sets)) * 0.8]})
    width = 0.8 / len(sets)
    colours = plt.get_cmap("tab10").colors
    top = 0.0
    for i, set_name in enumerate(sets):
        by_method = {s["method"]: s for s in summaries if s["set"] == set_name}
        means = [_stat(by_method[m]["overall"], "normmse", "mean") if m in by_method else None for m in methods]
        medians = [_stat(by_method[m]["overall"], "normmse", "median") if m in by_method else None for m in methods]
        x = np.arange(len(methods)) + (i - (len(sets) - 1) / 2) * width
        vals = np.array([np.nan if v is None else v for v in means])
        top = max(top, np.nanmax(np.append(vals, 0)))
        ax.bar(x, vals, width, color=colours[i % 10], label=set_name)
        ax.scatter(x, [np.nan if v is None else v for v in medians], color="black", s=14, zorder=3,
                   label="median" if i == 0 else None)
        for xi, v, med in zip(x, vals, medians):
            if not np.isnan(v):
                ax.text(xi, max(v, med or 0) + 0.02, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=0.8, label="no change")
    ax.set_xticks(np.arange(len(methods)), methods)
    ax.set_ylabel("NormMSE over test conditions (bar: mean)")
    ax.set_ylim(0, max(1.3, top * 1.25))
    ax.legend(fontsize=8, loc="upper center", ncol=min(len(sets) + 2, 4))
    ax.set_title("Prediction error per embedding set", fontsize=11)
    share = [quality.get(s, {}).get("share_go_bp") for s in sets]
    rand = [quality.get(s, {}).get("random_share_go_bp") for s in sets]
    xs = np.arange(len(sets))
    bx.bar(xs, [np.nan if v is None else v for v in share], 0.6, color=[colours[i % 10] for i in range(len(sets))])
    bx.scatter(xs, [np.nan if v is None else v for v in rand], marker="_", s=600, color="black", zorder=3,
               label="random genes")
    for xi, v in zip(xs, share):
        if v is not None:
            bx.text(xi, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    k = next((q.get("k") for q in quality.values() if q), "")
    bx.set_xticks(xs, sets, rotation=20, ha="right", fontsize=8)
    bx.set_ylabel(f"share of top-{k} neighbours sharing a GO BP term")
    bx.set_ylim(0, 1)
    bx.legend(fontsize=8)
    bx.set_title("Neighbour quality", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, Path(path), **_SAVEFIG)


# ---------------------------------------------------------------------------------------------- reports
def _pick_conditions(test: Sequence[str], subgroup_of: Mapping[str, str], n: int = 4) -> list[str]:
    """Up to ``n`` test conditions, one per subgroup first (in :data:`SUBGROUPS` order), then in split order."""
    picked = []
    for g in SUBGROUPS:
        picked += [c for c in test if subgroup_of.get(c) == g][:1]
    picked += [c for c in test if c not in picked]
    return picked[:n]


def _neighbour_rows(neighbors: Mapping[str, dict]) -> pd.DataFrame:
    rows = []
    for query, info in neighbors.items():
        shown = query if info["symbol"] in (None, query) else f"{query} → {info['symbol']} ({info['how']})"
        found = ", ".join(f"{n['symbol']} {n['cosine']:.2f}" for n in info["neighbors"]) or info.get("note") or "-"
        rows.append({"gene (resolved)": shown, "nearest genes (cosine)": found})
    return pd.DataFrame(rows)


def _explanation_rows(explanations: Sequence[dict], scores: Mapping[str, Mapping[str, float | None]]) -> pd.DataFrame:
    rows = []
    for e in explanations:
        row = {"test condition": e["condition"], "subgroup": e["subgroup"]}
        row.update({f"NormMSE {m}": scores[m].get(e["condition"]) for m in scores})
        row["nearest trained perturbations (cosine)"] = ", ".join(
            f"{n['condition']} {n['cosine']:.2f}" for n in e["nearest"])
        row["nearest trained genes, per gene (cosine)"] = "; ".join(
            f"{g}: " + ", ".join(f"{n['symbol']} {n['cosine']:.2f}" for n in ns) for g, ns in e["genes"].items())
        rows.append(row)
    return pd.DataFrame(rows)


def write_demo_report(result: DemoResult, data: PerturbationData, *,
                      published: str | os.PathLike | None = None) -> dict[str, Path]:
    """Plots into ``result.out/plots`` and ``report.md`` + ``report.html`` into ``result.out``.

    Parameters
    ----------
    result
        What :func:`scouter_local.demo.run_demo` measured (benchmark, neighbours, explanations, timings).
    data
        The Norman subset, genes resolved onto the demo's embedding set (observed profiles for the plots).
    published
        ``reference/scouter_published/norman.csv`` for the context table, or ``None``.

    Returns
    -------
    ``{"markdown": path, "html": path, "plots": [paths]}``.
    """
    out = Path(result.out)
    plots = out / "plots"
    default, seed = result.methods[0], result.seeds[0]
    doc = Document("scouter-local demo report")
    s = result.corpus_stats
    embedded = result.embed
    screens = ", ".join(f"{name} {info['resolved']}/{info['genes']}" for name, info in result.screens.items())
    unresolved = sorted({g for info in result.screens.values() for g in info["unresolved"]})
    doc.paragraph(
        f"Data folder `{result.data_dir}`; corpus `{result.db}` ({s.get('genes', 0):,} genes, "
        f"{s.get('documents', 0):,} documents). Model `{result.model}` → embedding set `{result.set_name}` "
        f"({embedded.get('dim')} dimensions). Total run time **{result.timings.get('total', 0) / 60:.1f} min** "
        "(goal: under 10 minutes on 2 CPU cores).")
    doc.paragraph(
        f"**Only the documents of the genes perturbed in the shared screens were embedded** ({embedded.get('genes')} "
        f"genes with a document; resolved/perturbed per screen: {screens}), not all "
        f"{s.get('documents', 0):,} documents, to keep the demo short on a CPU. "
        f"{embedded.get('computed', 0)} were computed by this run, {embedded.get('cached', 0)} were cached. "
        f"`scouter-local embed --db {result.db} --model {result.model} --set {result.set_name}` embeds the rest."
        + (f" Not resolved by the corpus (left out): {', '.join(unresolved[:12])}"
           f"{' …' if len(unresolved) > 12 else ''}." if unresolved else ""))

    doc.heading("Benchmark on the Norman 2019 subset")
    frame = benchmark_frame(result.summaries).drop(columns="set")
    best = min(result.summaries, key=lambda x: x["overall"]["normmse"]["mean"] or np.inf)
    by = {x["method"]: x for x in result.summaries}
    doc.paragraph(
        f"Norman et al. 2019 K562 CRISPRa cells (`obs['dataset'] == 'norman19'`, 500 genes), Scouter condition splits "
        f"(test 20 %, validation 10 %) with seeds {', '.join(map(str, result.seeds))}; metrics on each test "
        "condition's top-20 DE genes, pooled over the seeds. "
        f"`{default}` is the default `train` method; `scouter` is the Scouter network on the `{result.set_name}` "
        "embeddings; the others are baselines. NormMSE 1.0 = predicting no change.")
    doc.bullets([
        (f"Lowest mean NormMSE overall: **{best['method']}** {_fmt(best['overall']['normmse']['mean'])} "
         f"(median {_fmt(best['overall']['normmse']['median'])})."),
        *(f"`{m}`: mean {_fmt(by[m]['overall']['normmse']['mean'])}, median "
          f"{_fmt(by[m]['overall']['normmse']['median'])}" for m in (default, "scouter", "train_mean") if m in by),
    ])
    grid = plot_normmse_grid(result.summaries, plots / "normmse_by_subgroup.png",
                             title=f"Norman subset, {len(result.seeds)} split(s): mean NormMSE by subgroup")
    doc.image(grid, "Mean NormMSE per method and subgroup (median in brackets); n = test conditions over all seeds.")
    doc.table(overview_frame(result.summaries),
              "Per method, over all test conditions: NormMSE mean/median, mean Pearson Δ (top-20 DE genes and all "
              "genes), mean direction accuracy (top-20), then mean NormMSE per subgroup.")
    doc.paragraph("Subgroups: " + "; ".join(f"`{g}` = {GROUP_HELP[g]}" for g in GROUPS) + ".")

    if published is not None:
        ref = published_frame(published)
        doc.table(ref, "For context only — a different split and setting: published per-condition results of the "
                       "Scouter authors (Zhu & Li 2025) on the full Norman 2019 data (about 5,000 genes, GEARS "
                       "simulation splits, 5 seeds); Pearson Δ top-20 = 1 − mean(1-PCC). Not comparable number for "
                       "number with the table above.")

    split = result.split
    subgroup_of = {c["condition"]: c["subgroup"] for c in result.runs[(result.set_name, default, seed)]["conditions"]}
    chosen = _pick_conditions(split["test"], subgroup_of)
    baselines = sorted((x for x in result.summaries if x["method"] not in (default, "scouter", "no_change")),
                       key=lambda x: x["overall"]["normmse"]["mean"] or np.inf)
    shown = [m for m in dict.fromkeys([default, "scouter", *(x["method"] for x in baselines[:2])]) if m in by]
    runs = {m: result.runs[(result.set_name, m, seed)] for m in shown}
    scores = {m: {c["condition"]: c["normmse"] for c in run["conditions"]} for m, run in runs.items()}
    if chosen:
        panel = plot_top20_panel(data, chosen, {m: {c: np.asarray(v) for c, v in run["predictions"].items()}
                                                for m, run in runs.items()},
                                 plots / f"top20_seed{seed}.png", scores=scores, subgroups=subgroup_of)
        doc.image(panel, f"Split seed {seed}: observed and predicted changes on the top-20 DE genes of test "
                         f"conditions ({', '.join(shown)}; the two best baselines by mean NormMSE).")

    doc.heading("Why a prediction: nearest trained perturbations")
    doc.paragraph(
        f"For each test condition of split seed {seed}, the training conditions nearest to it in the "
        f"`{result.set_name}` embedding space (cosine of the summed gene embeddings, as Scouter reads them; FAISS inner "
        "product on normalised vectors) and, per gene, the nearest genes that training saw. The same explanation is "
        "available from Python (`scouter_local.explain.explain_predictor`).")
    all_scores = {m: {c["condition"]: c["normmse"] for c in result.runs[(result.set_name, m, seed)]["conditions"]}
                  for m in (default, "scouter") if (result.set_name, m, seed) in result.runs}
    doc.table(_explanation_rows(result.explanations, all_scores))

    doc.heading("Gene neighbours in the embedding space")
    q = result.go_quality
    doc.table(_neighbour_rows(result.neighbors),
              f"Nearest genes of a few genes among the {embedded.get('genes')} embedded genes "
              "(flat FAISS index, cosine); old symbols are resolved through the corpus.")
    if q.get("share_go_bp") is not None:
        doc.paragraph(
            f"Neighbour quality: {q['share_go_bp']:.1%} of the top-{q['k']} neighbours of a gene share a GO Biological "
            f"Process term with it, against {q['random_share_go_bp']:.1%} for random genes (enrichment "
            f"{q['enrichment']:.2f}×; {q['genes']} genes with a BP annotation).")

    doc.heading("Run time")
    timings = pd.DataFrame([{"stage": k, "seconds": f"{v:.1f}"} for k, v in result.timings.items()
                            if k not in ("total", "report")]
                           + [{"stage": "total (until this report)", "seconds": f"{result.timings.get('total', 0):.1f}"}])
    doc.table(timings, "Wall time per stage on this machine.")
    doc.paragraph(f"Full benchmark outputs (per-run JSON, per-condition CSV, the benchmark's own plots): "
                  f"`{out / 'benchmark'}`. Machine-readable summary: `{out / 'report.json'}`.")
    doc.code(result.table)
    doc.heading("Details per subgroup")
    doc.table(frame, "Per method and subgroup: NormMSE mean/median, mean Pearson Δ, mean direction accuracy.")
    doc.paragraph(ATTRIBUTION)
    paths = doc.write(out)
    return {**paths, "plots": [p for p in (grid, panel if chosen else None) if p is not None]}


def write_comparison_report(result: ComparisonResult) -> dict[str, Path]:
    """``comparison.csv``, ``plots/comparison.png``, ``plots/normmse_by_subgroup.png`` and
    ``comparison.md``/``.html`` into ``result.out``."""
    out = Path(result.out)
    table = comparison_table(result.summaries, result.quality)
    csv_path = out / "comparison.csv"
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False)
    plot = plot_comparison(result.summaries, result.quality, out / "plots" / "comparison.png")
    grid = plot_normmse_grid(result.summaries, out / "plots" / "normmse_by_subgroup.png",
                             title="Mean NormMSE by subgroup, per embedding set and method")
    doc = Document("scouter-local compare-models")
    doc.paragraph(f"Screen `{result.data}`; corpus `{result.db}`; embedding sets {', '.join(result.sets)}; "
                  f"methods {', '.join(result.methods)}; split seeds {', '.join(map(str, result.seeds))}.")
    doc.image(plot, "Left: NormMSE per method and embedding set (bar mean, dot median; dashed: no change). Right: "
                    "share of a gene's nearest neighbours sharing a GO Biological Process term (bar) against random "
                    "genes (black line), on the genes every set holds.")
    doc.table(table, "Overall metrics per set and method, with the set's GO neighbour quality.")
    if result.dropped:
        doc.paragraph(f"Conditions left out for every set because some set has no embedding for one of their genes "
                      f"(so that all sets are trained and tested on the same splits): {', '.join(result.dropped)}.")
    doc.paragraph("Neighbour quality rewards embeddings whose neighbours share GO Biological Process terms; for sets "
                  "made from GO-derived texts (template `go`) it is partly circular.")
    doc.image(grid, "Mean NormMSE per subgroup (median in brackets).")
    doc.table(benchmark_frame(result.summaries), "Per subgroup.")
    doc.paragraph(ATTRIBUTION)
    paths = doc.write(out, stem="comparison")
    return {**paths, "csv": csv_path, "plots": [plot, grid]}
