"""Shared test fixtures: the real data folder beside the project (../shared/data).

Without the data folder, tests that need it skip with the reason, except under ``CI=true``, where the session
stops at once with one clear message: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("SCOUTER_DATA_DIR", ROOT.parent / "shared" / "data"))


#: The ``scouter-local`` command of the running environment.
SCOUTER_LOCAL = Path(sys.executable).parent / "scouter-local"


def torchrun(*args) -> list[str]:
    """The command running ``ARGS`` in two processes (torch.distributed.run, what ``accelerate launch`` runs)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *map(str, args)]


def _data_present() -> bool:
    return (DATA_DIR / "MANIFEST.md").exists()


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI", "").lower() == "true" and not _data_present():
        raise pytest.UsageError(
            f"CI=true but the real data folder {DATA_DIR} is absent: put the project's shared "
            "data beside the checkout (../shared/data) or set SCOUTER_DATA_DIR"
        )


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data folder (``../shared/data``); tests that need it skip only where it is absent (never in CI)."""
    if not _data_present():
        pytest.skip(f"real data folder {DATA_DIR} is absent (set SCOUTER_DATA_DIR)")
    return DATA_DIR
