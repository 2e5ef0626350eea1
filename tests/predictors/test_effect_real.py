"""The effect label and model on the real screens (slow tier): on the Replogle file the MiniLM vectors rank held-out
targets with a detectable effect above the rest and their row-shuffled copies do not; the Norman subset gets its
E-test label, too few single genes for an effect model, and a ``rank`` that says so; a Replogle model predicts
``p_effect`` and ranks through the command line."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from scouter_local.cli import main
from scouter_local.conditions import is_single

THRESHOLD = 1.1


@pytest.fixture(scope="module")
def replogle(replogle_path, screen_db, embeddings):
    from scouter_local.data.link import prepare_data
    from scouter_local.datasets import PRESETS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepare_data(replogle_path, PRESETS["replogle"].options, screen_db, embeddings)


def _test_auroc(data, embeddings, label, seed: int) -> float:
    """AUROC of the logistic effect model (embedding only) on the test singles of a seeded split."""
    from scouter_local.data.splits import make_split
    from scouter_local.predictors.effect import fit_effect

    split = make_split(data, "scouter", seed=seed)
    part = fit_effect(
        data, embeddings, [*split.train, *split.val], label, seed=seed, model="logistic", stacking="never"
    )
    test = [c for c in split.test if is_single(c) and c in label]
    rows = [data.gene_rows[c.split("+")[0]] for c in test]
    return roc_auc_score(label.labels(test), part.model.predict_effect(embeddings.vectors[rows]))


def test_real_vectors_detect_effects_and_shuffled_ones_do_not(replogle, replogle_path, embeddings):
    from scouter_local.data.effect import threshold_label
    from scouter_local.evaluation.signal import shuffled_embeddings

    label = threshold_label(replogle, "signal_to_noise", THRESHOLD)
    assert label.n == len(replogle.perturbations) and 0.05 < label.positives / label.n < 0.12
    real = [_test_auroc(replogle, embeddings, label, seed) for seed in (1, 2, 3)]
    shuffled = [
        _test_auroc(replogle, shuffled_embeddings(embeddings, replogle, seed=10_000 * seed + k), label, seed)
        for seed in (1, 2, 3)
        for k in range(2)
    ]
    print(f"Replogle test AUROC: real {np.round(real, 3)}, shuffled {np.round(shuffled, 3)}")
    assert np.mean(real) > 0.65 and min(real) > 0.6
    assert abs(np.mean(shuffled) - 0.5) < 0.08
    assert np.mean(real) - np.mean(shuffled) > 0.12


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_norman_gets_its_e_test_label_and_rank_says_why_it_cannot(norman_path, screen_db, tmp_path):
    from scouter_local.datasets import PRESETS

    model = tmp_path / "norman"
    args = ["train", "--data", norman_path, "--db", screen_db, "--set", "minilm", "--out", model, "--seed", 1]
    with pytest.warns(UserWarning, match="the model has no effect part"):
        done = invoke(*args, "--method", "train_mean", *PRESETS["norman"].options.to_cli())
    assert done.exit_code == 0, done.output
    effect = json.loads((model / "manifest.json").read_text())["effect"]
    label = effect["label"]
    detectable = [c["condition"] for c in label["conditions"] if c["label"]]
    singles = [c["condition"] for c in label["conditions"] if is_single(c["condition"])]
    print(f"Norman E-test: {len(detectable)} of {label['n']} conditions detectable; {len(singles)} singles")
    assert label["rule"] == "E-test FDR < 0.05" and label["n"] == 33 and len(singles) == 18
    assert 20 <= len(detectable) <= 30
    assert {c["n_control"] for c in label["conditions"]} == {100}
    done = invoke("rank", "--model", model, "--out", tmp_path / "r.csv")
    assert done.exit_code == 1 and done.output.startswith("error: the model has no effect part: only ")
    assert "single-gene training conditions labelled by E-test FDR < 0.05" in done.output


@pytest.fixture(scope="module")
def replogle_model(replogle_path, screen_db, tmp_path_factory):
    """train_mean on the Replogle file (seed 1) with the effect label signal_to_noise > 1.1."""
    from scouter_local.datasets import PRESETS

    model = tmp_path_factory.mktemp("replogle") / "model"
    args = ["train", "--data", replogle_path, "--db", screen_db, "--set", "minilm", "--out", model, "--seed", 1]
    done = invoke(
        *args,
        "--method",
        "train_mean",
        *PRESETS["replogle"].options.to_cli(),
        "--strong-key",
        "signal_to_noise",
        "--strong-above",
        THRESHOLD,
    )
    assert done.exit_code == 0, done.output
    assert "effect model: " in done.output and f"(signal_to_noise > {THRESHOLD:g})" in done.output
    return model


def test_replogle_model_ranks_unmeasured_genes(replogle_model, tmp_path):
    manifest = json.loads((replogle_model / "manifest.json").read_text())
    measured = {g for c in manifest["split"]["train"] + manifest["split"]["val"] for g in c.split("+") if g != "ctrl"}
    done = invoke("rank", "--model", replogle_model, "--top", 10, "--out", tmp_path / "r.csv", "--json")
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert [r["rank"] for r in out["ranked"]] == list(range(1, 11)) and out["not_ranked"] == []
    first = out["ranked"][0]
    assert list(first) == ["rank", "symbol", "entrez_id", "p_effect", "strength", "well_studied", "neighbours"]
    assert first["symbol"] not in measured and 0 < first["p_effect"] < 1 and 0 < first["well_studied"] < 1
    assert len(first["neighbours"]) == 5 and {n["symbol"] for n in first["neighbours"]} <= measured
    p = [r["p_effect"] for r in out["ranked"]]
    assert p == sorted(p, reverse=True)
    table = pd.read_csv(tmp_path / "r.csv")
    assert list(table["symbol"]) == [r["symbol"] for r in out["ranked"]]
    assert table["nearest_measured"].str.count(";").eq(4).all()


def test_rank_lists_the_genes_it_cannot_rank(replogle_model, tmp_path):
    genes = tmp_path / "genes.txt"
    genes.write_text("KIAA1804\nNOT_A_GENE_X\nACTB\nKLF1\n")
    with pytest.warns(UserWarning, match=r"2 of 4 genes cannot be ranked: NOT_A_GENE_X \(unknown in the corpus"):
        done = invoke("rank", "--model", replogle_model, "--genes", genes, "--out", tmp_path / "r.csv", "--json")
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    reasons = {n["gene"]: n["reason"] for n in out["not_ranked"]}
    assert reasons["NOT_A_GENE_X"].startswith("unknown in the corpus")
    assert reasons["ACTB"] == "no embedding in set 'minilm'"
    assert {r["symbol"] for r in out["ranked"]} == {"MAP3K21", "KLF1"}  # KIAA1804 is MAP3K21 now
    table = pd.read_csv(tmp_path / "r.csv")
    assert table["reason"].notna().sum() == 2 and table["rank"].notna().sum() == 2


def test_replogle_predictions_carry_p_effect(replogle_model, tmp_path):
    out = tmp_path / "p.csv"
    args = ("--perturbation", "KLF1", "--perturbation", "KIAA1804+KLF1", "--out", out)
    done = invoke("predict", "--model", replogle_model, *args)
    assert done.exit_code == 0, done.output
    frame = pd.read_csv(out, index_col=0)
    assert frame.columns[0] == "p_effect" and frame["p_effect"].between(0, 1).all()
    assert frame.loc["KLF1+MAP3K21", "p_effect"] >= frame.loc["KLF1+ctrl", "p_effect"]
