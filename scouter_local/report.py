"""Reports: a :class:`Document` of blocks (headings, paragraphs, tables, images, code) written as Markdown (PNG
plots linked) and HTML (plots embedded), and the tables reports show.

Tables come from benchmark results (:class:`~scouter_local.benchmarking.MethodResult`): :func:`benchmark_frame`
(method × group NormMSE mean/median, Pearson Δ, direction), :func:`overview_frame`, :func:`signal_frame` (real vs
shuffled embeddings), :func:`comparison_table`, and :func:`published_frame` (the Scouter authors' published Norman
numbers, a different split and setting).
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

from gene_corpus.atomic import write_text_atomic
from scouter_local.data import SUBGROUPS
from scouter_local.evaluation import CEILING, GROUPS, METRICS, STRONG

if TYPE_CHECKING:
    from scouter_local.benchmarking import MethodResult

GROUP_HELP = {
    "overall": "all test conditions",
    "single": "single gene never seen in training",
    "single_seen": "single gene seen only inside a training combination",
    "combo_seen0": "combination, neither gene seen in training",
    "combo_seen1": "combination, one gene seen in training",
    "combo_seen2": "combination, both genes seen in training",
    STRONG: "conditions whose noise column marks a detectable effect",
}
PUBLISHED_SUBGROUPS = {"single": "single", "seen0": "combo_seen0", "seen1": "combo_seen1", "seen2": "combo_seen2"}
ATTRIBUTION = (
    "Data: Norman et al. 2019 (Science) via the PerturBench fixture (BSD-3-Clause); gene texts NCBI RefSeq + "
    "UniProt (CC BY 4.0) as packaged by GenePT/Scouter (MIT); GO (CC BY 4.0) via Bioconductor org.Hs.eg.db; "
    "published numbers: Zhu & Li, Nat Comput Sci 2025."
)


def _fmt(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "-"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{x:.{digits}f}"


# ---------------------------------------------------------------------------------------------- tables
_LABELS = {
    "normmse": "NormMSE",
    "pearson_delta_top20": "Pearson Δ top-20",
    "pearson_delta_all": "Pearson Δ all genes",
    "direction_top20": "direction top-20",
}


def _label(r: MethodResult, results: Sequence[MethodResult]) -> str:
    return r.method if len({x.set for x in results}) <= 1 else f"{r.set}: {r.method}"


def benchmark_frame(results: Sequence[MethodResult]) -> pd.DataFrame:
    """One row per method and group (``overall``, then each subgroup present, then ``strong``).

    Returns
    -------
    Columns ``set, method, group, n, NormMSE mean, NormMSE median, Pearson Δ top-20, Pearson Δ all genes,
    direction top-20`` (means over the test conditions pooled across seeds).
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
    Columns ``method, n, NormMSE mean, NormMSE median, Pearson Δ top-20, Pearson Δ all genes, direction top-20``
    and ``NormMSE <group>`` for every other group with test conditions.
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
                rows.append(
                    {
                        "method": method,
                        "group": group,
                        "n": len(part),
                        "NormMSE mean": float(part["NormMSE"].mean()),
                        "NormMSE median": float(part["NormMSE"].median()),
                        "Pearson Δ top-20": float(1 - part["1-PCC"].mean()),
                    }
                )
    return pd.DataFrame(rows)


def comparison_table(
    results: Sequence[MethodResult], quality: Mapping[str, dict], *, block: str = "overall", text: bool = False
):
    """Per set and method on one block of conditions (``overall`` or ``strong``): NormMSE mean/median, Pearson Δ
    (top-20 DE genes and all genes: a pseudo-bulk screen's ceiling has only the latter), direction, the
    real-vs-shuffled test, and the set's GO neighbour quality.

    Returns
    -------
    A DataFrame, or with ``text=True`` its aligned plain-text rendering (what ``compare-models`` prints).
    """
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
                "shuffled": signal.get("shuffled"),
                "delta vs shuffled": signal.get("delta"),
                "p": signal.get("p_value"),
                "verdict": signal.get("verdict", "-" if r.method != CEILING else ""),
                f"GO-BP share top-{q.get('k', '')}": q.get("share_go_bp"),
                "random share": q.get("random_share_go_bp"),
                "enrichment": q.get("enrichment"),
            }
        )
    frame = pd.DataFrame(rows)
    if not text:
        return frame
    return frame.to_string(
        index=False, formatters={c: _fmt for c in frame.columns if c not in ("set", "method", "block", "verdict")}
    )


# ---------------------------------------------------------------------------------------------- document
def _md_cell(value) -> str:
    """A Markdown table cell: ``|`` escaped, line breaks as spaces."""
    return str(value).replace("|", "\\|").replace("\n", " ")


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
                lines.append("| " + " | ".join(_md_cell(c) for c in frame.columns) + " |")
                lines.append("|" + "|".join("---" if frame[c].dtype == object else "---:" for c in frame.columns) + "|")
                lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in self._cells(frame)]
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
                body = "".join(
                    "<tr>"
                    + "".join(
                        f"<td class='{'num' if n else 'txt'}'>{html.escape(v)}</td>" for v, n in zip(row, numeric)
                    )
                    + "</tr>"
                    for row in self._cells(frame)
                )
                caption = f"<caption>{self._inline(b.caption)}</caption>" if b.caption else ""
                parts.append(f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif b.kind == "image":
                data = base64.b64encode(Path(b.content).read_bytes()).decode()
                parts.append(
                    f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(b.caption)}'>"
                    f"<figcaption>{self._inline(b.caption)}</figcaption></figure>"
                )
            elif b.kind == "code":
                parts.append(f"<pre>{html.escape(str(b.content))}</pre>")
        style = (
            "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
            "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;"
            "padding:3px 8px}th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}"
            "caption{caption-side:top;text-align:left;font-style:italic;padding:4px 0}img{max-width:100%}"
            "figcaption{font-style:italic;margin-bottom:1.5em}pre{background:#f6f6f6;padding:8px;overflow-x:auto}"
        )
        return (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
        )

    def write(self, folder: str | os.PathLike, stem: str = "report") -> dict[str, Path]:
        """Write ``<stem>.md`` and ``<stem>.html`` into ``folder`` (each through a temporary file)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"markdown": folder / f"{stem}.md", "html": folder / f"{stem}.html"}
        for kind, path in paths.items():
            write_text_atomic(path, self.to_markdown(folder) if kind == "markdown" else self.to_html())
        return paths
