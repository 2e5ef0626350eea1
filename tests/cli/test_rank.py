"""``train``'s effect label options and ``rank`` through the command line on the synthetic screen: too few labelled
genes give a warning at training and a one-line refusal with the reason at ranking; so does a model folder from
before effect models."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from scouter_local.cli import main
from tests.cli.test_synthetic_flow import one_line_error

OPTIONS = (
    "--condition-key",
    "condition",
    "--control",
    "control",
    "--single-format",
    "bare",
    "--subset",
    "dataset=main",
)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(cells, tiny_db, tmp_path_factory):
    """A model of the synthetic cells: the E-test labels its conditions, too few to fit an effect model."""
    folder = tmp_path_factory.mktemp("rank")
    data = folder / "cells.h5ad"
    cells[0].write_h5ad(data)
    model = folder / "model"
    with pytest.warns(UserWarning, match=r"the model has no effect part \(rank refuses it\): only \d labelled genes"):
        result = invoke("train", "--data", data, "--db", tiny_db, "--set", "synthetic", "--out", model, *OPTIONS)
    assert result.exit_code == 0, result.output
    return data, model


def test_train_keeps_the_label_and_why_there_is_no_effect_model(trained):
    effect = json.loads((trained[1] / "manifest.json").read_text())["effect"]
    assert effect["model"] is None and effect["label"]["rule"] == "E-test FDR < 0.05"
    assert len(effect["label"]["conditions"]) == 10 and "needs at least 10" in effect["reason"]


def test_rank_refuses_with_the_reason(trained, tmp_path):
    line = one_line_error("rank", "--model", trained[1], "--out", tmp_path / "r.csv")
    assert re.match(r"error: the model has no effect part: only \d labelled genes to learn from; .* E-test FDR", line)
    assert not (tmp_path / "r.csv").exists()


def test_rank_refuses_a_model_folder_from_before_effect_models(trained, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    for name in ("model.pt", "split.json"):
        (old / name).write_bytes((trained[1] / name).read_bytes())
    manifest = json.loads((trained[1] / "manifest.json").read_text())
    del manifest["effect"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert "trained without an effect label" in one_line_error("rank", "--model", old, "--out", tmp_path / "r.csv")
    result = invoke("predict", "--model", old, "--perturbation", "SYN1", "--out", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output


def test_train_checks_the_label_options_first(trained, tiny_db, tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the data were read before the label options were checked")

    monkeypatch.setattr("scouter_local.data.link.prepare_data", never)
    train = ("train", "--data", trained[0], "--db", tiny_db, "--set", "synthetic", "--out", tmp_path / "m", *OPTIONS)
    assert "--strong-key and --strong-above go together" in one_line_error(*train, "--strong-key", "n_cells")
    assert "--strong-key 'nope' not in obs" in one_line_error(*train, "--strong-key", "nope", "--strong-above", "1")
    assert not (tmp_path / "m").exists()


def test_rank_options_exclude_each_other(trained, tmp_path):
    genes = tmp_path / "genes.txt"
    genes.write_text("SYN1\n")
    args = ("rank", "--model", trained[1], "--out", tmp_path / "r.csv")
    assert "pass either --genes or --all, not both" in one_line_error(*args, "--genes", genes, "--all")
    assert "--top 0: expected a number of genes" in one_line_error(*args, "--top", "0")
