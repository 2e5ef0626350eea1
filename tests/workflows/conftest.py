"""Fixtures for the product tests: one small end-to-end demo run whose corpus the other tests reuse."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

os.environ.setdefault("SCOUTER_LOCAL_THREADS", "2")


@pytest.fixture(scope="session")
def demo_run(data_dir, tmp_path_factory) -> dict:
    """``scouter-local demo`` on small settings (Norman genes only, 1 seed, Scouter 2 epochs); returns the CLI
    result, the output folder and ``report.json``."""
    from scouter_local.cli import main

    out = tmp_path_factory.mktemp("demo") / "demo_out"
    result = CliRunner().invoke(
        main,
        [
            "demo",
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
            "--seeds",
            "1",
            "--epochs",
            "2",
            "--screens",
            "norman",
            "--shuffles",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    return {"result": result, "out": out, "report": json.loads((out / "report.json").read_text())}


@pytest.fixture(scope="session")
def demo_db(demo_run) -> Path:
    return demo_run["out"] / "corpus.duckdb"
