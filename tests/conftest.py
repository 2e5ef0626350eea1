"""Two tiers of tests, in folders that mirror the package (tests/gene_corpus, tests/embedding, … tests/cli).

    python -m pytest -m "not slow"    # fast loop: synthetic screens and an encoder stand-in (tests/_synthetic.py);
                                      # no data folder, no model installed, under a minute on 2 cores
    python -m pytest                  # everything, as .ci/run does: also the real data (../shared/data) and models

A test is ``slow`` when it needs the real data folder or a real model: every test whose fixtures reach one of
:data:`SLOW_FIXTURES` (the real-data fixtures of tests/_realdata.py all reach ``data_dir``) is marked here; a test
that loads a real model by name, or runs long (pip in a new environment, children beside 600 MiB), carries the mark
itself. Without the data folder, slow tests skip with the reason, except under ``CI=true``, where a session that
selects any slow test stops at once with one clear message: CI must never pass by skipping.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("SCOUTER_LOCAL_THREADS", "2")

pytest_plugins = ("tests._realdata", "tests._synthetic")

ROOT = Path(__file__).resolve().parents[1]

#: Fixtures that need the real data folder or a real model: a test whose fixture closure holds one is ``slow``.
SLOW_FIXTURES = frozenset({"data_dir", "minilm_encoder", "minilm_folder", "sentence_transformer", "tiny_llama"})

#: The ``scouter-local`` command of the running environment.
SCOUTER_LOCAL = Path(sys.executable).parent / "scouter-local"


def copy_db(src: Path, folder: Path) -> Path:
    """Copy a database file (not its sidecar index/shard folders) into ``folder``: session databases are read-only
    masters."""
    dst = folder / src.name
    shutil.copy(src, dst)
    return dst


def torchrun(*args) -> list[str]:
    """The command running ``ARGS`` in two processes (torch.distributed.run, what ``accelerate launch`` runs)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *map(str, args)]


@pytest.fixture(autouse=True)
def _package_logger_untouched() -> None:
    """Each test starts with the ``scouter_local`` logger as the package leaves it (no handler, level unset): a
    command an earlier test or fixture ran in-process (``log_to_stderr``) must not add INFO lines to its output."""
    logger = logging.getLogger("scouter_local")
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that reaches real data or a real model through its fixtures (before ``-m``
    selects)."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under ``CI=true``, stop before the first test when slow tests are selected and the data folder is absent."""
    from tests._realdata import DATA_DIR, data_present

    if os.environ.get("CI", "").lower() != "true" or data_present():
        return
    if any(item.get_closest_marker("slow") for item in session.items):
        raise pytest.UsageError(
            f"CI=true but the real data folder {DATA_DIR} is absent: put the project's shared "
            "data beside the checkout (../shared/data) or set SCOUTER_DATA_DIR (or select -m 'not slow')"
        )
