"""Fixtures of the command-line reliability tests (issue #7): CLI runners as subprocesses (to the end, or killed
at a chosen moment) and table snapshots to compare databases."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from scouter_local.datasets import PRESETS
from tests.conftest import SCOUTER_LOCAL

#: Options of the Norman part of the PerturBench file, for ``train``.
NORMAN_OPTS = tuple(PRESETS["norman"].options.to_cli())
#: Environment of CLI subprocesses: few threads, no colour, and never the user's model cache.
SUBPROCESS_ENV = {**os.environ, "SCOUTER_LOCAL_THREADS": "2", "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}


def table_snapshot(
    db: Path, tables: tuple[str, ...] | None = None, ignore: tuple[str, ...] = ("imported_at", "updated_at")
) -> dict[str, tuple[int, int]]:
    """``{table: (rows, order-independent hash of all values)}`` of a database, leaving out time-of-run columns.

    Parameters
    ----------
    db
        DuckDB file.
    tables
        Tables to include (default: every base table).
    ignore
        Columns not compared (when the run happened, not what it wrote).
    """
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        names = tables or tuple(
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' ORDER BY 1"
            ).fetchall()
        )
        out = {}
        for t in names:
            cols = [
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                    [t],
                ).fetchall()
                if r[0] not in ignore
            ]
            row = con.execute(
                f"SELECT count(*), coalesce(sum(hash({', '.join(cols)})::HUGEINT), 0) FROM {t}"
            ).fetchone()
            out[t] = (int(row[0]), int(row[1]))
        return out
    finally:
        con.close()


# ------------------------------------------------------------------------------------------------ the CLI
def cli(*args) -> subprocess.CompletedProcess:
    """Run ``scouter-local ARGS`` in a subprocess to the end."""
    return subprocess.run(
        [SCOUTER_LOCAL, *map(str, args)], capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=600
    )


@contextlib.contextmanager
def _reader(stream, sink: list[str]) -> Iterator[None]:
    def pump() -> None:
        for block in iter(lambda: os.read(stream.fileno(), 65536), b""):
            sink.append(block.decode(errors="replace"))

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    yield
    thread.join(timeout=10)


def kill_when(args, ready: Callable[[str], bool], *, delay: float = 0.0, timeout: float = 300) -> tuple[bool, str]:
    """Start ``scouter-local ARGS``, wait until ``ready(stderr so far)`` is true, wait ``delay`` s, then SIGKILL it.

    Returns
    -------
    ``(killed, stderr)``: ``killed`` is False when the command ended by itself first (nothing was tested).
    """
    proc = subprocess.Popen(
        [SCOUTER_LOCAL, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=SUBPROCESS_ENV
    )
    chunks: list[str] = []
    with _reader(proc.stderr, chunks):
        end = time.monotonic() + timeout
        while proc.poll() is None and not ready("".join(chunks)):
            if time.monotonic() > end:
                proc.kill()
                raise TimeoutError(f"{args}: not ready within {timeout} s")
            time.sleep(0.02)
        if delay:
            time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    if killed:
        assert proc.returncode == -signal.SIGKILL
    return killed, "".join(chunks)


def progress_at_least(total: int, n: int) -> Callable[[str], bool]:
    """``ready`` for :func:`kill_when`: a tqdm bar on stderr has reached ``n`` of ``total``."""
    pattern = re.compile(rf"(\d+)/{total}\b")
    return lambda err: any(int(m) >= n for m in pattern.findall(err))
