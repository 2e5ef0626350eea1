"""Reports: a :class:`Document` of blocks (headings, paragraphs, tables, images, code) written as Markdown (PNG
plots linked) and HTML (plots embedded).
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gene_corpus.files import write_text_atomic


def format_value(x, digits: int = 3) -> str:
    """A table cell: ``-`` for a missing value, integers as such, other numbers with ``digits`` decimals."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "-"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{x:.{digits}f}"


def _numeric(column: pd.Series) -> bool:
    """Whether a table column holds numbers (right-aligned); text columns are ``object`` or, in pandas 3, ``str``."""
    return pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


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
        return [[v if isinstance(v, str) else format_value(v) for v in row] for row in frame.itertuples(index=False)]

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
                lines.append("|" + "|".join("---:" if _numeric(frame[c]) else "---" for c in frame.columns) + "|")
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
                numeric = [_numeric(frame[c]) for c in frame.columns]
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
