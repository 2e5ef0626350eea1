"""``python -m benchmarks.gpu``: its comparison and report code on CPU tensors, the time budget and the reason a part
gives when it cannot run (no data or model needed), then the whole command on the CPU (``slow``: real data and
models), once for its CPU side and once rehearsing the GPU code paths on CPU processes."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import gpu
from tests.conftest import ROOT


def _vectors(n=60, d=24, seed=0):
    torch = pytest.importorskip("torch")

    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32))


def test_agreement_of_reduced_precision_on_cpu_tensors():
    ref = _vectors()
    import torch

    same = gpu.agreement(ref, ref.clone())
    assert same["min_cosine"] == pytest.approx(1.0) and same["overlap_at_10"] == 1.0 and same["n"] == 60
    bf16 = gpu.agreement(ref, ref.to(torch.bfloat16))
    assert 0.999 < bf16["min_cosine"] < 1.0 and bf16["overlap_at_10"] >= 0.9
    fp16 = gpu.agreement(ref, ref.to(torch.float16))
    assert fp16["min_cosine"] > bf16["min_cosine"]  # fp16 keeps 3 more mantissa bits than bf16
    noisy = gpu.agreement(ref, ref + 2.0 * _vectors(seed=1))
    assert noisy["min_cosine"] < 0.8 and noisy["overlap_at_10"] < 0.6
    with pytest.raises(ValueError, match="shapes differ"):
        gpu.agreement(ref, ref[:-1])


def test_neighbours_exclude_self_and_keep_order():
    x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    nn = gpu.neighbours(x, k=2)
    assert nn.shape == (4, 2) and all(i not in row for i, row in enumerate(nn))
    assert nn[0, 0] == 1 and nn[2, 0] == 3
    assert gpu.neighbours(x[:2], k=10).shape == (2, 1)


def test_identical_sets_aligned_by_symbol():
    v = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
    symbols = list("ABCDE")
    same = gpu.identical(symbols, v, symbols[::-1], v[::-1])
    assert same["bitwise_identical"] and same["genes"] == 5 and same["max_abs_diff"] == 0
    moved = v.copy()
    moved[2, 1] = np.nextafter(moved[2, 1], np.float32(9))
    close = gpu.identical(symbols, v, symbols + ["F"], np.vstack([moved, np.ones((1, 4), np.float32)]))
    assert not close["bitwise_identical"] and 0 < close["max_abs_diff"] < 1e-6 and close["only_b"] == 1
    assert close["min_cosine"] == pytest.approx(1.0)


def test_normmse_difference():
    out = gpu.normmse_difference({"A+ctrl": 0.5, "B+C": 1.0, "D+ctrl": 2.0}, {"A+ctrl": 0.6, "B+C": 1.0})
    assert out == {
        "conditions": 2,
        "cpu_mean": 0.75,
        "cuda_mean": 0.8,
        "difference": 0.05,
        "max_condition_difference": 0.1,
    }
    assert gpu.rate(500, 2.0) == 250.0 and gpu.rate(5, 0) is None


def test_table_rows_from_results():
    a = {
        "part": "minilm",
        "status": "ok",
        "seconds": 41.2,
        "cpu": {"genes_per_s": 61.3},
        "cuda": [
            {"dtype": "float32", "min_cosine": 0.99999, "overlap_at_10": 1.0},
            {"dtype": "float16", "min_cosine": 0.9999, "overlap_at_10": 0.99},
            {"dtype": "bfloat16", "min_cosine": 0.998, "overlap_at_10": 0.97},
        ],
        "batch_tokens": [
            {"dtype": "bfloat16", "batch_tokens": 8192, "genes_per_s": 900.0},
            {"dtype": "bfloat16", "batch_tokens": 32768, "genes_per_s": 2400.0},
        ],
    }
    row = gpu.table_row(gpu.BY_KEY["a"], a)
    assert row.startswith("a minilm") and "41/90 s" in row
    assert "fp16 0.9999" in row and "bf16 0.9980" in row and "2400 genes/s (bfloat16, 32768 tokens)" in row
    b = {
        "part": "smollm2",
        "status": "ok",
        "cpu": {"genes_per_s": 3.1},
        "cuda": [
            {"mode": "bf16", "genes_per_s": 800, "weights_mib": 257},
            {"mode": "8bit", "genes_per_s": 300, "weights_mib": 155, "min_cosine": 0.996},
            {"mode": "4bit", "error": "RuntimeError: no kernel"},
        ],
        "bf16_vs_cpu": {"min_cosine": 0.9991},
    }
    row = gpu.summary(b)
    assert "8bit 300 genes/s, 155 MiB, cos to bf16 min 0.9960" in row and "4bit: RuntimeError: no kernel" in row
    c = {
        "part": "scouter",
        "status": "ok",
        "runs": [
            {"device": "cpu", "normmse": 0.7492, "seconds_per_epoch": 0.18},
            {"device": "cuda", "normmse": 0.7511, "seconds_per_epoch": 0.05},
        ],
        "difference": {"difference": 0.0019},
    }
    assert gpu.summary(c).endswith("cuda NormMSE 0.7511, 0.05 s/epoch; difference +0.0019")
    d = {
        "part": "accelerate",
        "status": "ok",
        "processes": 2,
        "one_process_seconds": 20.0,
        "launched_seconds": 30.0,
        "comparison": {"genes": 497, "bitwise_identical": False, "max_abs_diff": 3e-7, "min_cosine": 0.99999999},
    }
    assert "497 genes, max |diff| 3.00e-07" in gpu.summary(d)
    skipped = {"status": "skipped", "reason": "needs 2 or more CUDA GPUs, found 1"}
    assert gpu.table_row(gpu.BY_KEY["d"], skipped).endswith("skipped: needs 2 or more CUDA GPUs, found 1")
    assert "-/110 s" in gpu.table_row(gpu.BY_KEY["d"], skipped)


def test_budgets_fit_eight_minutes_on_one_gpu():
    one_gpu = sum(p.budget for p in gpu.PARTS if p.name != "accelerate")
    assert one_gpu <= 8 * 60 - 60, "keep a minute for start-up and the driver"


def _args(tmp_path, **kw):
    base = {"out": tmp_path, "data_dir": tmp_path / "no-data", "genes": 5, "cpu_genes": 2, "rehearse": False}
    return argparse.Namespace(**(base | {"epochs": None} | kw))


def test_part_that_cannot_run_says_why(tmp_path):
    """No data folder: the part's process fails and its row names the reason; a part over budget is stopped."""
    result = gpu.spawn(gpu.BY_KEY["a"], _args(tmp_path), budget=120)
    assert result["status"] == "failed" and "is absent: pass --data-dir" in result["reason"]
    assert "is absent" in gpu.table_row(gpu.BY_KEY["a"], result)
    stopped = gpu.spawn(gpu.BY_KEY["a"], _args(tmp_path), budget=0.05)
    assert stopped["status"] == "timeout" and "budget of 0 s" in stopped["reason"]


def test_command_without_data_is_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", "--out", str(tmp_path), "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 2 and "is absent: pass --data-dir" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", "--out", str(tmp_path), "--parts", "a,z"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 2 and "unknown part 'z'" in done.stderr


def _run(tmp_path, data_dir, *options):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", "--out", str(tmp_path), "--data-dir", str(data_dir), *options],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout, json.loads((tmp_path / "gpu.json").read_text())


@pytest.mark.slow
def test_cpu_side_writes_json(data_dir, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the full check runs instead of the CPU side")
    out, report = _run(tmp_path, data_dir, "--genes", "20", "--cpu-genes", "2", "--epochs", "2")
    assert report["cuda"] is False and report["rehearsal"] is False
    parts = report["parts"]
    assert [parts[p]["status"] for p in ("minilm", "smollm2", "scouter", "accelerate")] == ["ok"] * 3 + ["skipped"]
    assert parts["minilm"]["cpu"]["genes_per_s"] > 0 and parts["minilm"]["genes"] == 20
    assert "cuda" not in parts["minilm"] and parts["minilm"]["reason"] == "CPU side only: no CUDA GPU"
    assert parts["scouter"]["runs"][0]["device"] == "cpu" and parts["scouter"]["test_conditions"] > 0
    assert "needs 2 or more CUDA GPUs" in parts["accelerate"]["reason"]
    assert len([line for line in out.splitlines() if line[:2] in ("a ", "b ", "c ", "d ")]) == 4
    assert (tmp_path / "part_minilm.json").is_file() and (tmp_path / "minilm_cpu_fp32.npy").is_file()


@pytest.mark.slow
def test_rehearsal_runs_the_gpu_paths_on_cpu(data_dir, tmp_path):
    """The GPU code of every part on the CPU: dtypes, batch budgets, bitsandbytes modes, the second Scouter run
    and the two-process embedding with its merge."""
    _, report = _run(tmp_path, data_dir, "--rehearse", "--genes", "12", "--cpu-genes", "2", "--epochs", "2")
    parts = report["parts"]
    assert report["rehearsal"] is True and {p["status"] for p in parts.values()} == {"ok"}, parts
    a = parts["minilm"]
    assert [r["dtype"] for r in a["cuda"]] == list(gpu.DTYPES) and len(a["batch_tokens"]) == 3
    assert a["cuda"][0]["min_cosine"] > 0.9999 and min(r["min_cosine"] for r in a["cuda"]) > 0.99
    b = parts["smollm2"]
    assert [r["mode"] for r in b["cuda"]] == ["bf16", "8bit", "4bit"]
    assert all("error" in r or r["genes_per_s"] for r in b["cuda"])
    c = parts["scouter"]
    assert [r["device"] for r in c["runs"]] == ["cpu", "cuda"] and c["difference"]["difference"] == 0
    d = parts["accelerate"]["comparison"]
    assert d["genes"] == 12 and (d["bitwise_identical"] or d["max_abs_diff"] < 1e-5)
