"""Shared test fixtures: the real data folder beside the project (../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("SCOUTER_DATA_DIR", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data folder (``../shared/data``); tests that need it skip only where it is absent."""
    if not (DATA_DIR / "MANIFEST.md").exists():
        pytest.skip(f"real data folder {DATA_DIR} is absent (set SCOUTER_DATA_DIR)")
    return DATA_DIR
