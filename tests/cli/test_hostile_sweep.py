"""A fast part of the hostile sweep (``python -m benchmarks.hostile``, issue #21): a few attempts of each kind that
need neither the shared data, a model nor ``unshare``, each in its own process under a timeout."""

from __future__ import annotations

import pytest

from benchmarks.hostile import ATTEMPTS, Workspace, format_table, run_attempt

QUICK = (
    "train: NaN in X",
    "train: zeroed HDF5 global heap",
    "train: split test = train",
    "train --epochs 0",
    "benchmark --seeds 5-1",
    "predict --perturbation KLF1+KLF1",
    "predict(model, 'KLF1'): one gene, not four",
    "perturbation_data(numpy array)",
    "corpus import: another program's DuckDB",
)


@pytest.mark.slow  # 30 s of subprocesses: the integration tier
def test_quick_hostile_sweep(tmp_path):
    chosen = [a for a in ATTEMPTS if a.what in QUICK]
    assert len(chosen) == len(QUICK)
    workspace = Workspace(tmp_path / "inputs", None)
    outcomes = [run_attempt(a, workspace, tmp_path / f"{i:02d}", timeout=60) for i, a in enumerate(chosen)]
    assert all(o.verdict == "ok" for o in outcomes), format_table(outcomes)
