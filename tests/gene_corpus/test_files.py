"""gene_corpus.files: a write either completes or leaves the old file/folder untouched — on exceptions and when the
writing process is killed with SIGKILL (a real child process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gene_corpus import files
from gene_corpus.files import atomic_dir, atomic_path, write_csv_atomic, write_json_atomic, write_text_atomic

ROOT = Path(__file__).resolve().parents[2]


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(params=["renameat2", "two-renames"])
def swap_mode(request, monkeypatch) -> str:
    """Run a folder test with the kernel's atomic exchange and with the portable two-rename fallback."""
    if request.param == "two-renames":
        monkeypatch.setattr(files, "_libc_renameat2", lambda: None)
    return request.param


def test_text_and_json_replace_the_target(tmp_path):
    target = tmp_path / "sub" / "report.json"
    write_json_atomic(target, {"n": 1})
    write_json_atomic(target, {"n": 2, "when": object()}, default=lambda o: "x")
    assert json.loads(target.read_text()) == {"n": 2, "when": "x"}
    write_text_atomic(tmp_path / "table.txt", "a\n")
    assert (tmp_path / "table.txt").read_text() == "a\n"
    assert _listing(tmp_path) == ["sub", "table.txt"] and _listing(tmp_path / "sub") == ["report.json"]


def test_csv_rows_are_quoted_and_a_failing_row_writes_nothing(tmp_path):
    target = tmp_path / "table.csv"
    write_csv_atomic(target, ["condition", "value"], [["KLF1+ctrl", 0.5], ['a,"b"', None]])
    assert target.read_text().splitlines() == ["condition,value", "KLF1+ctrl,0.5", '"a,""b""",']
    with pytest.raises(ZeroDivisionError):
        write_csv_atomic(target, ["x"], ([1 / n] for n in (1, 0)))
    assert target.read_text().startswith("condition,value") and _listing(tmp_path) == ["table.csv"]


def test_temp_path_is_beside_the_target_and_keeps_its_suffix(tmp_path):
    target = tmp_path / "pred.h5ad"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".pred.h5ad.") and tmp.suffix == ".h5ad"
        assert not tmp.exists()
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"


def test_exception_mid_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as tmp, open(tmp, "w") as fh:
        fh.write("new, half written")
        fh.flush()
        raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert _listing(tmp_path) == ["table.csv"]


def test_unserialisable_json_writes_nothing(tmp_path):
    target = tmp_path / "r.json"
    with pytest.raises(TypeError):
        write_json_atomic(target, {"x": object()})
    assert _listing(tmp_path) == []


def test_a_block_that_writes_nothing_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "never.txt"):
        pass
    assert _listing(tmp_path) == []


def test_folder_swap_replaces_an_existing_target(tmp_path, swap_mode):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_dir(target) as tmp:
        assert tmp.parent == tmp_path and tmp.is_dir() and not any(tmp.iterdir())
        (tmp / "manifest.json").write_text("{}")
        assert (target / "old.txt").read_text() == "old"  # untouched while the new one is built
    assert _listing(target) == ["manifest.json"]
    assert _listing(tmp_path) == ["model"]


def test_folder_exception_keeps_the_old_target(tmp_path, swap_mode):
    target = tmp_path / "index"
    target.mkdir()
    (target / "index.faiss").write_text("old")
    with pytest.raises(ValueError), atomic_dir(target) as tmp:
        (tmp / "index.faiss").write_text("half")
        raise ValueError("bad vector")
    assert (target / "index.faiss").read_text() == "old"
    assert _listing(tmp_path) == ["index"]


def test_folder_without_overwrite_keeps_a_target_made_meanwhile(tmp_path, swap_mode):
    target = tmp_path / "cache"
    with pytest.raises(FileExistsError), atomic_dir(target, overwrite=False) as tmp:
        (tmp / "config.json").write_text("mine")
        target.mkdir()  # another process finished first
        (target / "config.json").write_text("theirs")
    assert (target / "config.json").read_text() == "theirs"
    assert _listing(tmp_path) == ["cache"]
    with atomic_dir(tmp_path / "fresh", overwrite=False) as tmp:
        (tmp / "a").write_text("1")
    assert (tmp_path / "fresh" / "a").read_text() == "1"


CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from gene_corpus.files import atomic_dir, atomic_path

    target, kind = Path(sys.argv[1]), sys.argv[2]
    if kind == "file":
        with atomic_path(target) as tmp, open(tmp, "w") as fh:
            fh.write("new content, " * 10000)
            fh.flush()
            print("writing", flush=True)
            time.sleep(600)
    else:
        with atomic_dir(target) as tmp:
            (tmp / "weights.bin").write_bytes(b"new" * 10000)
            print("writing", flush=True)
            time.sleep(600)
""")


def _kill_mid_write(target: Path, kind: str) -> None:
    """Start a child writing ``target`` atomically, SIGKILL it once it is mid-write, and reap it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(target), kind], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_sigkill_mid_write_leaves_the_old_file_readable(tmp_path):
    target = tmp_path / "genes.jsonl"
    target.write_text('{"symbol": "TP53"}\n')
    _kill_mid_write(target, "file")
    assert target.read_text() == '{"symbol": "TP53"}\n'
    # the killed writer could not clean up: only its hidden temporary is left, and the next write still works
    leftovers = [n for n in _listing(tmp_path) if n != "genes.jsonl"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".genes.jsonl.tmp-")
    write_text_atomic(target, "next\n")
    assert target.read_text() == "next\n"


def test_sigkill_mid_folder_build_leaves_the_old_folder(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights.bin").write_bytes(b"old")
    _kill_mid_write(target, "dir")
    assert _listing(target) == ["weights.bin"] and (target / "weights.bin").read_bytes() == b"old"
