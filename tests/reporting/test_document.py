"""The report Document: the same blocks as Markdown (plots linked) and HTML (plots embedded); table cells."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest

from scouter_local.reporting.document import Document, format_value

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")


@pytest.mark.parametrize(
    "value, text", [(None, "-"), (float("nan"), "-"), (3, "3"), (np.int64(7), "7"), (0.12345, "0.123"), (2.0, "2.000")]
)
def test_format_value(value, text):
    assert format_value(value) == text


@pytest.fixture
def document(tmp_path) -> Document:
    plot = tmp_path / "plots" / "p.png"
    plot.parent.mkdir()
    plot.write_bytes(PNG)
    doc = Document("Run <1>")
    doc.heading("Results")
    doc.paragraph("**Bold** and `code` | kept")
    doc.bullets(["first", "second"])
    doc.table(pd.DataFrame({"method": ["a|b", "c"], "NormMSE": [0.5, float("nan")], "n": [3, 4]}), caption="Table 1")
    doc.image(plot, "A plot")
    doc.code("x < 1")
    return doc


def test_markdown(document, tmp_path):
    md = document.to_markdown(tmp_path)
    assert md.splitlines()[:5] == ["# Run <1>", "", "## Results", "", "**Bold** and `code` | kept"]
    assert "- first\n- second" in md
    assert "*Table 1*\n\n| method | NormMSE | n |\n|---|---:|---:|\n| a\\|b | 0.500 | 3 |\n| c | - | 4 |" in md
    assert "![A plot](plots/p.png)" in md and "```\nx < 1\n```" in md


def test_html(document):
    page = document.to_html()
    assert page.startswith("<!DOCTYPE html>") and "<title>Run &lt;1&gt;</title>" in page
    assert "<p><b>Bold</b> and <code>code</code> | kept</p>" in page
    assert "<ul><li>first</li><li>second</li></ul>" in page
    assert "<caption>Table 1</caption>" in page
    assert "<td class='txt'>a|b</td><td class='num'>0.500</td><td class='num'>3</td>" in page
    assert f"<img src='data:image/png;base64,{base64.b64encode(PNG).decode()}' alt='A plot'>" in page
    assert "<pre>x &lt; 1</pre>" in page


def test_write_both(document, tmp_path):
    paths = document.write(tmp_path / "out", stem="report")
    assert paths["markdown"].read_text() == document.to_markdown(tmp_path / "out")
    assert paths["html"].read_text() == document.to_html()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html", "report.md"]
