"""Offline guarantee: the whole flow runs with every network connection and name lookup refused and recorded,
and none is attempted; the hub is reached only with ``--allow-download``; HF offline variables are set."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request

import pytest
from click.testing import CliRunner

from scouter_local.cli import main
from tests._network import SocketGuard
from tests._realdata import SET
from tests.conftest import ROOT, SCOUTER_LOCAL, copy_db

from .conftest import NORMAN_OPTS, SUBPROCESS_ENV

HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def _ok(args: list) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, f"{args}: {result.output}"
    return result.stdout


def test_guard_records_and_refuses_network_attempts() -> None:
    """The guard is not vacuous: TCP, HTTP and DNS attempts are refused and recorded; local sockets work."""
    original = socket.getaddrinfo
    with SocketGuard() as guard:
        with pytest.raises(OSError):
            socket.create_connection(("example.org", 80), timeout=1)
        with pytest.raises(OSError):
            urllib.request.urlopen("http://pypi.org/simple/", timeout=1)
        with pytest.raises(OSError):
            socket.getaddrinfo("huggingface.co", 443)
        left, right = socket.socketpair()  # AF_UNIX: allowed
        left.sendall(b"x")
        assert right.recv(1) == b"x"
        left.close(), right.close()
    assert len(guard.attempts) == 3 and {a[0] for a in guard.attempts} >= {"create_connection", "getaddrinfo"}
    assert socket.getaddrinfo is original  # restored on exit


def test_whole_flow_makes_no_network_attempt(screen_db, guard_log, norman_path, tmp_path) -> None:
    """Corpus import and embedding (session fixtures), then neighbours of a gene and of a text, training,
    evaluation with plots and prediction, all in this process under the guard: zero attempts."""
    assert guard_log == []  # corpus import + MiniLM embedding of the screens' genes were built under the guard
    db = copy_db(screen_db, tmp_path)
    model = tmp_path / "model"
    with SocketGuard() as guard:
        neighbours = json.loads(_ok(["neighbors", "--db", db, "--set", SET, "KLF1", "-k", "3", "--json"]))
        by_text = json.loads(
            _ok(
                ["neighbors", "--db", db, "--set", SET, "--text", "erythroid transcription factor", "-k", "3", "--json"]
            )
        )
        _ok(
            [
                "train",
                "--data",
                norman_path,
                "--db",
                db,
                "--set",
                SET,
                "--out",
                model,
                "--method",
                "scouter",
                "--seed",
                1,
                "--epochs",
                1,
                *NORMAN_OPTS,
            ]
        )
        _ok(["evaluate", "--model", model, "--json", tmp_path / "eval.json", "--plots", tmp_path / "plots"])
        _ok(["predict", "--model", model, "--perturbation", "KIAA1804", "--out", tmp_path / "pred.csv"])
    assert guard.attempts == []
    assert len(neighbours) == 3 and len(by_text) == 3
    assert json.loads((tmp_path / "eval.json").read_text())["n_conditions"] > 0
    assert (tmp_path / "pred.csv").stat().st_size > 0


#: Installed in every Python process of the demo (``PYTHONPATH``): the socket guard, each attempt and each process
#: that loaded it written to ``$SCOUTER_GUARD_LOG``.
SITECUSTOMIZE = """
import atexit, json, os
from tests._network import SocketGuard

_guard = SocketGuard().__enter__()
_log = os.environ["SCOUTER_GUARD_LOG"]
with open(_log, "a") as fh:
    fh.write(json.dumps({"pid": os.getpid(), "loaded": True}) + "\\n")

@atexit.register
def _write():
    with open(_log, "a") as fh:
        for what, address in _guard.attempts:
            fh.write(json.dumps({"pid": os.getpid(), "attempt": what, "address": address}) + "\\n")
"""


def test_demo_makes_no_network_attempt(data_dir, tmp_path) -> None:
    """``scouter-local demo`` (the whole flow, smallest settings) in a process with no network at the OS level
    (``unshare -n``, where the sandbox allows it), every Python process it starts (the benchmark's runs are
    child processes) carrying the socket guard: zero attempts, recorded from the parent and its children."""
    guard_dir = tmp_path / "guard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "guard.jsonl"
    env = {
        **SUBPROCESS_ENV,
        "SCOUTER_GUARD_LOG": str(log),
        "PYTHONPATH": os.pathsep.join([str(guard_dir), str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    isolate = (
        ["unshare", "-n"] if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0 else []
    )
    done = subprocess.run(
        [
            *isolate,
            SCOUTER_LOCAL,
            "demo",
            "--data-dir",
            str(data_dir),
            "--out",
            str(tmp_path / "d"),
            "--seeds",
            "1",
            "--epochs",
            "1",
            "--screens",
            "norman",
            "--shuffles",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    loaded = {r["pid"] for r in records if r.get("loaded")}
    assert len(loaded) >= 3, records  # the demo itself and at least two benchmark runs (child processes)
    assert [r for r in records if "attempt" in r] == []


def test_offline_variables_are_set_on_import() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    code = (
        "import os, scouter_local, huggingface_hub.constants as c; "
        "print(os.environ['HF_HUB_OFFLINE'], os.environ['TRANSFORMERS_OFFLINE'], c.HF_HUB_OFFLINE)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["1", "1", "True"]


def test_hub_id_needs_allow_download(tmp_path) -> None:
    """A hub id without ``--allow-download`` is a one-line error before any connection is tried."""
    with SocketGuard() as guard:
        result = CliRunner().invoke(
            main, ["embed", "--db", str(tmp_path / "c.duckdb"), "--model", HUB_ID, "--set", "hub"]
        )
    assert result.exit_code == 1 and guard.attempts == []
    assert result.stderr.strip().splitlines() == [
        f"error: model {HUB_ID!r} is not a local folder, .gguf file or installed package; install it, pass a path, "
        "or add --allow-download to fetch it from the Hugging Face hub"
    ]


def test_allow_download_is_the_only_network_access(tmp_path) -> None:
    """With ``--allow-download`` the hub download is tried (refused by the guard here) and reported as one line;
    the offline switch is back on afterwards."""
    with SocketGuard() as guard:
        result = CliRunner().invoke(
            main,
            ["embed", "--db", str(tmp_path / "c.duckdb"), "--model", HUB_ID, "--set", "hub", "--allow-download"],
            env={"HF_HUB_ETAG_TIMEOUT": "1"},
        )
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert result.exit_code == 1, result.output
    assert guard.attempts, "--allow-download did not even try the hub"
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip().splitlines()[0]]
    assert result.stderr.startswith(f"error: could not download model {HUB_ID!r}")
