"""train / predict / evaluate / benchmark through the command line, end to end on the real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scouter_local.cli import main
from scouter_local.datasets import PRESETS
from tests.conftest import SCOUTER_LOCAL, torchrun

NORMAN_OPTS = PRESETS["norman"].options.to_cli()
REPLOGLE_OPTS = ["--condition-key", "target_ensembl", "--single-format", "bare"]


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def train_args(data, db, out, *options) -> list:
    """``train`` of ``data`` on set ``minilm`` of ``db`` into ``out`` with ``options``."""
    return ["train", "--data", data, "--db", db, "--set", "minilm", "--out", out, *options]


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.fixture(scope="module")
def norman_model(norman_path, screen_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "scouter"
    r = run(*train_args(norman_path, screen_db, out, "--seed", 2, "--method", "scouter", "--epochs", 1, *NORMAN_OPTS))
    assert r.exit_code == 0, r.output
    return out


def test_train_writes_model_folder(norman_model):
    manifest = json.loads((norman_model / "manifest.json").read_text())
    assert manifest["method"] == "scouter" and manifest["split"]["seed"] == 2
    assert len(manifest["split"]["test"]) == 7 and len(manifest["train_conditions"]) == 23
    assert manifest["data"]["options"]["subset"] == [["dataset", "norman19"]]
    assert (norman_model / "model.pt").exists() and (norman_model / "split.json").exists()


def test_evaluate_with_baselines_and_plots(norman_model, tmp_path):
    out = tmp_path / "eval.json"
    r = run("evaluate", "--model", norman_model, "--json", out, "--plots", tmp_path / "plots")
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert res["method"] == "scouter" and res["n_conditions"] == 7
    assert {"overall", "subgroups", "conditions"} <= set(res)
    assert set(res["baselines"]) == {"no_change", "train_mean", "additive", "ridge", "knn"}
    assert res["baselines"]["no_change"]["overall"]["normmse"]["mean"] == pytest.approx(1.0)
    assert out.with_suffix(".csv").exists()
    assert (tmp_path / "plots" / "subgroups_normmse.png").exists()
    assert len(list((tmp_path / "plots").glob("top20_*.png"))) == 7


def test_predict_old_symbol_and_file(norman_model, norman_path, tmp_path):
    out = tmp_path / "pred.csv"
    r = run(
        "predict", "--model", norman_model, "--perturbation", "KIAA1804", "--perturbation", "SET+KLF1", "--out", out
    )
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out, index_col=0)
    assert list(df.index) == ["MAP3K21+ctrl", "KLF1+SET"] and df.shape[1] == 500  # old symbol resolved
    r = run("predict", "--model", norman_model, "--data", norman_path, "--out", tmp_path / "all.h5ad")
    assert r.exit_code == 0, r.output
    import anndata as ad

    assert ad.read_h5ad(tmp_path / "all.h5ad").shape == (33, 500)


def test_baseline_method_trains(norman_path, screen_db, norman, tmp_path):
    """``additive`` trained and evaluated through the command line scores what its definition gives: control plus
    the deltas of the condition's genes trained as singles (the control mean, NormMSE 1, when there is none)."""
    out = tmp_path / "additive"
    r = run(
        *train_args(norman_path, screen_db, out, "--method", "additive", "--seed", 5, *NORMAN_OPTS)
    )  # seed 5: MAP2K3+MAP2K6 and MAPK1+TGFBR2 with trained singles
    assert r.exit_code == 0, r.output
    r = run("evaluate", "--model", out, "--json", tmp_path / "e.json")
    result = json.loads((tmp_path / "e.json").read_text())
    assert r.exit_code == 0 and result["method"] == "additive"
    trained = json.loads((out / "manifest.json").read_text())["train_conditions"]
    ctrl = norman.control_mean()
    scored = {row["condition"]: row["normmse"] for row in result["conditions"]}
    assert len(scored) == 7
    for condition, normmse in scored.items():
        singles = [f"{g}+ctrl" for g in condition.split("+") if g != "ctrl" and f"{g}+ctrl" in trained]
        predicted = ctrl + sum(norman.condition_mean(s) - ctrl for s in singles)
        top = norman.de_genes[condition]
        observed = norman.condition_mean(condition)[top]
        expected = np.mean((observed - predicted[top]) ** 2) / np.mean((observed - ctrl[top]) ** 2)
        assert normmse == pytest.approx(expected, rel=1e-4), condition
    assert sum(v != pytest.approx(1.0) for v in scored.values()) >= 2  # not all predicted as no change
    assert result["baselines"]["additive"]["overall"] == result["overall"]


def test_replogle_split_none_then_other_file(replogle_files, screen_db, tmp_path):
    model = tmp_path / "replogle"
    r = run(
        *train_args(
            replogle_files[0], screen_db, model, "--split", "none", "--method", "scouter", "--epochs", 2, *REPLOGLE_OPTS
        )
    )
    assert r.exit_code == 0, r.output
    assert "error: " in run("evaluate", "--model", model, "--json", tmp_path / "x.json").output  # no test split
    out = tmp_path / "other.json"
    r = run("evaluate", "--model", model, "--data", replogle_files[1], "--json", out)
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    # every condition is evaluated, except targets whose gene has no corpus document (listed, with the reason)
    assert res["n_conditions"] + len(res["excluded"]) == 30 and res["n_conditions"] >= 20
    assert set(res["subgroups"]) == {"single"}
    assert all(c["normmse"] is not None for c in res["conditions"])


@pytest.mark.parametrize(
    "args, match",
    [
        (["--condition-key", "cond"], "condition key 'cond' not in obs"),
        (["--condition-key", "condition", "--control", "ctrl", "--single-format", "bare"], "pass --control control"),
        (["--condition-key", "condition", "--control", "control"], "--single-format bare"),
        (["--split", "nonsense", *NORMAN_OPTS], "--split 'nonsense'"),
        (["--method", "gears", *NORMAN_OPTS], "expected one of"),
        (["--subset", "dataset", "--control", "control"], "expected KEY=VALUE"),
    ],
)
def test_train_bad_input(norman_path, screen_db, tmp_path, args, match):
    r = run(*train_args(norman_path, screen_db, tmp_path / "m", "--method", "scouter", "--epochs", 1, *args))
    assert match in one_line_error(r)
    assert not (tmp_path / "m").exists()


def test_other_bad_input(norman_model, screen_db, norman_path, tmp_path):
    err = one_line_error(
        run("train", "--data", norman_path, "--db", screen_db, "--set", "nope", "--out", tmp_path / "m", *NORMAN_OPTS)
    )
    assert "'nope'" in err
    err = one_line_error(run("predict", "--model", norman_model, "--perturbation", "FOO1", "--out", tmp_path / "p.csv"))
    assert "FOO1" in err and "unknown" in err
    err = one_line_error(run("predict", "--model", tmp_path, "--perturbation", "KLF1", "--out", tmp_path / "p.csv"))
    assert "not a model folder" in err
    err = one_line_error(
        run("train", "--data", tmp_path / "missing.h5ad", "--db", screen_db, "--set", "minilm", "--out", tmp_path / "m")
    )
    assert "missing.h5ad: no such file" in err


def test_benchmark_command(norman_path, screen_db, tmp_path):
    r = run(
        "benchmark",
        "--data",
        norman_path,
        "--db",
        screen_db,
        "--set",
        "minilm",
        "--methods",
        "train_mean,additive",
        "--seeds",
        "3,4",
        "--out",
        tmp_path / "bench",
        *NORMAN_OPTS,
    )
    assert r.exit_code == 0, r.output
    assert "train_mean" in r.output and "additive" in r.output and "RSS MiB" in r.output and "sd/seed" in r.output
    assert "scouter-learn" not in r.output  # no typed-in reference figures (benchmarks/fidelity.py measures them)
    summary = json.loads((tmp_path / "bench" / "summary.json").read_text())
    assert {s["method"]: s["n_conditions"] for s in summary} == {
        "train_mean": 14,
        "additive": 14,
        "ceiling": 14,
        "well_studied": 5,  # the test single genes the detection baseline scores (seed 3; seed 4 has too few)
    }
    assert "overall" not in summary.pop()  # the well-studied row, last, has a detection block and no profiles
    ceiling = next(s for s in summary if s["method"] == "ceiling")["overall"]["normmse"]["mean"]
    assert 0 < ceiling < min(s["overall"]["normmse"]["mean"] for s in summary if s["method"] != "ceiling")
    for s in summary:  # the seeds' spread: per-seed means whose average over equal-sized seeds is the pooled mean
        assert s["seeds"]["seed"] == [3, 4]
        assert np.mean(s["seeds"]["normmse"]) == pytest.approx(s["overall"]["normmse"]["mean"])
    rows = pd.read_csv(tmp_path / "bench" / "summary.csv")
    overall = rows[rows["group"] == "overall"].set_index("method")["normmse_seed_sd"]
    for s in summary:
        assert overall[s["method"]] == pytest.approx(np.std(s["seeds"]["normmse"], ddof=1))
    assert (tmp_path / "bench" / "subgroups_minilm.png").exists()


@pytest.mark.slow
def test_two_processes_train_data_parallel(norman_path, screen_db, norman_model, tmp_path):
    """``torchrun --nproc_per_node 2 scouter-local train`` (what ``accelerate launch`` runs on GPUs): two CPU
    processes train one model through accelerate (DDP, batches dealt round-robin); the first saves it once."""
    import os
    import subprocess

    out = tmp_path / "ddp"
    options = ("--seed", 2, "--method", "scouter", "--epochs", 2, "--device", "cpu", *NORMAN_OPTS)
    done = subprocess.run(
        torchrun(SCOUTER_LOCAL, *train_args(norman_path, screen_db, out, *options)),
        capture_output=True,
        text=True,
        timeout=900,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained scouter") == 1  # one process wrote the model
    manifest = json.loads((out / "manifest.json").read_text())
    single = json.loads((norman_model / "manifest.json").read_text())
    assert [r["processes"] for r in manifest["history"]] == [2, 2]
    assert manifest["split"] == single["split"]  # same seeded split in every process
    assert all(r["loss"] > 0 and r["val_loss"] > 0 for r in manifest["history"])
    r = run("predict", "--model", out, "--perturbation", "KLF1+MAP2K6", "--out", tmp_path / "p.csv")
    assert r.exit_code == 0, r.output
    assert pd.read_csv(tmp_path / "p.csv", index_col=0).notna().all().all()


def _torchrun(args: list, timeout: float) -> tuple[int | None, str]:
    """``torchrun --standalone --nproc_per_node 2 ARGS`` with one torch thread per process; ``(exit status or
    None on timeout, stderr)``. On timeout the launcher and its workers (each in a session of its own) are killed."""
    import os
    import subprocess

    import psutil

    proc = subprocess.Popen(
        torchrun(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"OMP_NUM_THREADS": "1", "SCOUTER_LOCAL_THREADS": "1"},
    )
    try:
        _, err = proc.communicate(timeout=timeout)
        return proc.returncode, err
    except subprocess.TimeoutExpired:
        launcher = psutil.Process(proc.pid)
        for p in [*launcher.children(recursive=True), launcher]:
            p.kill()
        return None, proc.communicate()[1]


DDP_SCRIPT = Path(__file__).with_name("ddp_train.py")
#: Tolerance of data-parallel vs one-process training, justified in the test's docstring.
DDP_MIN_CORRELATION, DDP_MAX_NORMMSE_GAP = 0.93, 0.25


@pytest.mark.slow
def test_two_processes_train_the_model_one_process_trains(norman_path, screen_db, norman, embeddings, tmp_path):
    """Two processes with batch 114 each train what one process with batch 228 trains, within a stated tolerance.

    Why they should agree: with the same seed both start from the same weights and draw the same permutation of
    cells; dealt round-robin, batches 2i and 2i+1 of 114 cells are exactly batch i of 228 of the single run
    (2,280 training cells: 20 and 10 whole batches), and DDP averages their gradients. What differs is only
    BatchNorm's statistics (per 114-cell half) and the loss's per-condition means (per half), so the predicted
    deltas of the test conditions after 4 epochs correlate at 0.968 (measured), against 0.51 between two
    single-process runs with different seeds and 0.90 when each process trains on its own half without the
    gradient all-reduce (then the ranks' weights also differ by up to 15). Checked: the ranks hold identical
    weights, the deltas correlate at >= 0.93, and test NormMSE is within 25 % of the single run's (measured 12 %).
    """
    import torch

    from scouter_local.data.splits import make_split
    from scouter_local.evaluation.scoring import evaluate_predictions
    from scouter_local.predictors.training import train

    out = tmp_path / "ddp"
    status, stderr = _torchrun([DDP_SCRIPT, norman_path, screen_db, out, 2, 2, 4, 114], timeout=600)
    assert status == 0, stderr[-3000:]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])  # one model, kept in step on both ranks
    saved = np.load(out / "predictions.npz")
    assert saved["processes"].tolist() == [2, 2, 2, 2]

    split = make_split(norman, "scouter", seed=2)
    single = train(norman, embeddings, method="scouter", split=split, seed=2, epochs=4, batch_size=228, device="cpu")
    ctrl = norman.control_mean()
    ddp = {c: saved[c] for c in split.test}
    one = dict(zip(split.test, single.predict(split.test)))
    r = np.corrcoef(np.ravel([ddp[c] - ctrl for c in split.test]), np.ravel([one[c] - ctrl for c in split.test]))[0, 1]
    assert r >= DDP_MIN_CORRELATION
    scores = [evaluate_predictions(norman, p, split.train, method="scouter").mean("normmse") for p in (ddp, one)]
    assert abs(scores[0] - scores[1]) <= DDP_MAX_NORMMSE_GAP * scores[1], scores


@pytest.mark.slow
def test_two_processes_with_an_odd_number_of_batches_finish(norman_path, screen_db, tmp_path):
    """2,280 training cells in batches of 128 make 17 batches: each process runs 8 (the 17th is dropped), since
    accelerate's join_uneven_inputs does nothing on CPU and a process with one batch more would wait forever."""
    status, stderr = _torchrun([DDP_SCRIPT, norman_path, screen_db, tmp_path / "odd", 2, 2, 1, 128], timeout=90)
    assert status == 0, stderr[-3000:]
