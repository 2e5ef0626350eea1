"""``python -m benchmarks.fidelity`` on one seed and one epoch: it runs, prints its table and records each child's
own figures (what is measured is not asserted: speed and memory belong to the benchmark's table, not to tests)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from benchmarks.fidelity import OURS, PEER, peer_version
from tests.conftest import ROOT


def test_fidelity_benchmark_runs_both_sides_on_the_same_split(screen_db, norman, tmp_path):
    from scouter_local.data.splits import make_split

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.fidelity",
            "--seeds",
            "1",
            "--epochs",
            "1",
            "--db",
            str(screen_db),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    installed = peer_version() is not None
    assert ("scouter-learn is not installed" in done.stdout) != installed
    head = next(line for line in done.stdout.splitlines() if line.strip().startswith(OURS))
    assert (PEER in head) == installed and ("ratio ours/peer" in head) == installed
    assert next(line for line in done.stdout.splitlines() if line.startswith("mean NormMSE"))
    result = json.loads((tmp_path / "fidelity.json").read_text())
    names = [OURS, PEER] if installed else [OURS]
    assert [n for n in names if result["runs"][n]] == names
    split = make_split(norman, "scouter", seed=1)
    saved = json.loads((tmp_path / "seed1" / OURS / "model" / "split.json").read_text())
    assert saved["test"] == split.test  # the train command drew the benchmark's split
    for name in names:
        (run,) = result["runs"][name]
        assert run["seed"] == 1 and run["epochs"] == 1
        assert run["process_seconds"] > run["fit_seconds"] > 0 and run["peak_rss_mib"] > 0
        assert np.isfinite(run["normmse"])
    if installed:
        with np.load(tmp_path / "seed1" / PEER / "pred.npz") as pred:
            assert sorted(pred.files) == sorted(split.test) and pred[split.test[0]].shape == (norman.n_genes,)
