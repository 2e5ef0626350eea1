"""train → evaluate → predict through the command line on the synthetic screen and the tiny corpus (no data folder,
no model): the files each command writes and the values they hold."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scouter_local.cli import main

OPTIONS = ("--condition-key", "condition", "--control", "control", "--single-format", "bare", "--subset")


def run(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.stdout


def one_line_error(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ")
    return line


@pytest.fixture(scope="module")
def trained(cells, tiny_db, tmp_path_factory):
    folder = tmp_path_factory.mktemp("flow")
    data = folder / "cells.h5ad"
    cells[0].write_h5ad(data)
    model = folder / "model"
    train = ["train", "--data", data, "--db", tiny_db, "--set", "synthetic", "--out", model]
    run(*train, "--method", "additive", "--split", "simulation", "--seed", 2, *OPTIONS, "dataset=main")
    return data, model


def test_train_writes_the_model_folder(trained, tiny_db):
    manifest = json.loads((trained[1] / "manifest.json").read_text())
    assert manifest["method"] == "additive" and manifest["split"]["kind"] == "simulation"
    assert manifest["data"]["options"]["subset"] == [["dataset", "main"]] and manifest["db"] == str(tiny_db.resolve())
    parts = manifest["split"]
    assert sorted(parts["train"] + parts["val"] + parts["test"]) == sorted(
        ["SYN1+ctrl", "SYN2+ctrl", "SYN3+ctrl", "SYN4+ctrl", "SYN5+ctrl", "SYN6+ctrl"]
        + ["SYN1+SYN2", "SYN4+SYN5", "SYN2+SYN3", "SYN7+SYN8"]
    )
    assert {"manifest.json", "model.pt", "split.json"} <= {p.name for p in trained[1].iterdir()}


def test_evaluate_scores_the_test_conditions_with_baselines(trained, tmp_path):
    run("evaluate", "--model", trained[1], "--json", tmp_path / "e.json")
    result = json.loads((tmp_path / "e.json").read_text())
    test = json.loads((trained[1] / "split.json").read_text())["test"]
    assert result["method"] == "additive" and [c["condition"] for c in result["conditions"]] == test
    assert set(result["baselines"]) == {"no_change", "train_mean", "additive", "ridge", "knn"}
    assert result["baselines"]["no_change"]["overall"]["normmse"]["mean"] == pytest.approx(1.0)
    assert result["baselines"]["additive"]["overall"] == result["overall"]


def test_predict_resolves_old_symbols(trained, tmp_path):
    out = tmp_path / "pred.csv"
    run("predict", "--model", trained[1], "--perturbation", "OLD3", "--perturbation", "SYN2+OLD1", "--out", out)
    frame = pd.read_csv(out, index_col=0)
    assert list(frame.index) == ["SYN3+ctrl", "SYN1+SYN2"] and frame.shape[1] == 40
    assert np.isfinite(frame.to_numpy()).all()


def test_bad_input_is_one_line(trained, tiny_db, tmp_path):
    data, model = trained
    train = ["train", "--data", data, "--db", tiny_db, "--out", tmp_path / "m", *OPTIONS, "dataset=main"]
    assert "set 'nope' is not in" in one_line_error(*train, "--set", "nope")
    wrong_key = [a if a != "condition" else "cond" for a in train]
    assert "condition key 'cond' not in obs (columns: condition, dataset); pass --condition-key COLUMN" in (
        one_line_error(*wrong_key, "--set", "synthetic")
    )
    predict = ["predict", "--model", model, "--out", tmp_path / "p.csv"]
    assert "gene SYN99" in one_line_error(*predict, "--perturbation", "SYN99")
    assert not (tmp_path / "m").exists() and not (tmp_path / "p.csv").exists()
