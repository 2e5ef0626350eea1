"""Every registered method on the synthetic screen linked to the tiny corpus (``tests/_synthetic.py``): it fits,
predicts, saves and loads; the baselines give their defining values; Scouter trains a couple of epochs."""

from __future__ import annotations

import numpy as np
import pytest

from gene_corpus.errors import InputError
from scouter_local.data.splits import Split
from scouter_local.predictors import METHODS, make_predictor
from scouter_local.predictors.checkpoint import load_model, save_model
from scouter_local.predictors.training import train

#: Trained: five singles and a pair; tested: an unseen single, a pair of trained singles, a pair with an unseen gene
#: and a pair whose genes training never saw.
SPLIT = Split(
    train=["SYN1+ctrl", "SYN2+ctrl", "SYN4+ctrl", "SYN5+ctrl", "SYN6+ctrl", "SYN1+SYN2"],
    val=["SYN3+ctrl"],
    test=["SYN4+SYN5", "SYN2+SYN3", "SYN7+SYN8"],
)
#: Options that keep a method's fit short.
QUICK = {"scouter": {"epochs": 2}}


@pytest.fixture(scope="module")
def fitted(linked, tiny_embeddings) -> dict:
    return {
        m: train(linked, tiny_embeddings, method=m, split=SPLIT, seed=1, **QUICK.get(m, {})) for m in sorted(METHODS)
    }


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_predicts_and_loads_what_it_saved(method, fitted, linked, tiny_embeddings, tmp_path):
    model = fitted[method]
    assert model.split_ == SPLIT and model.train_conditions_ == SPLIT.train
    predicted = model.predict(SPLIT.test)
    assert predicted.shape == (3, linked.n_genes) and predicted.dtype == np.float32 and np.isfinite(predicted).all()
    loaded = load_model(save_model(model, tmp_path / method), tiny_embeddings, genes=linked.genes)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.predict(SPLIT.test), predicted)


def test_training_mean_is_kept_saved_and_absent_from_older_folders(fitted, linked, tiny_embeddings, tmp_path):
    """``train_mean_profile_`` (the reference of ``pearson_centred_top20``) is fitted, saved and loaded; a folder
    saved before it existed loads without it, and ``evaluate`` then scores that metric as undefined, nothing else."""
    import torch

    from scouter_local.evaluation.scoring import evaluate
    from scouter_local.predictors.checkpoint import WEIGHTS

    model = fitted["gene_delta"]
    np.testing.assert_array_equal(model.train_mean_profile_, linked.subset(SPLIT.train).mean_profile())
    folder = save_model(model, tmp_path / "m")
    loaded = load_model(folder, tiny_embeddings)
    np.testing.assert_array_equal(loaded.train_mean_profile_, model.train_mean_profile_)
    scored = evaluate(loaded, linked)
    assert scored.mean("pearson_centred_top20") is not None
    assert evaluate(fitted["train_mean"], linked).mean("pearson_centred_top20") == 0.0
    state = torch.load(folder / WEIGHTS, weights_only=True)
    del state["train_mean_profile"]
    torch.save(state, folder / WEIGHTS)
    old = load_model(folder, tiny_embeddings)
    assert old.train_mean_profile_ is None
    unscored = evaluate(old, linked)
    assert unscored.to_dict()["overall"]["pearson_centred_top20"] == {"mean": None, "median": None}
    for metric in ("normmse", "pearson_delta_top20"):
        assert unscored.mean(metric) == scored.mean(metric)
    np.testing.assert_array_equal(
        load_model(save_model(old, tmp_path / "again"), tiny_embeddings).predict(SPLIT.test), loaded.predict(SPLIT.test)
    )


def test_baselines_give_their_defining_values(fitted, linked):
    control = linked.control_mean()
    mean = {c: linked.condition_mean(c) for c in SPLIT.train}
    np.testing.assert_allclose(fitted["no_change"].predict(["SYN4+SYN5"])[0], control, atol=1e-6)
    np.testing.assert_allclose(
        fitted["train_mean"].predict(["SYN7+SYN8"])[0], np.mean([mean[c] for c in SPLIT.train], axis=0), atol=1e-5
    )
    additive = control + (mean["SYN4+ctrl"] - control) + (mean["SYN5+ctrl"] - control)
    np.testing.assert_allclose(fitted["additive"].predict(["SYN4+SYN5"])[0], additive, atol=1e-5)
    np.testing.assert_allclose(fitted["gene_delta"].predict(["SYN4+SYN5"])[0], additive, atol=1e-4)


def test_planted_shift_of_a_trained_pair_is_predicted(fitted, linked, cells):
    """The six readout genes planted for SYN4 and SYN5 are the six that rise most in the predicted SYN4+SYN5 (both
    singles trained)."""
    planted = {linked.genes.index(g) for g in cells[1]["SYN4+SYN5"]}
    for method in ("additive", "gene_delta"):
        delta = fitted[method].predict(["SYN4+SYN5"])[0] - linked.control_mean()
        assert set(np.argsort(-delta)[:6]) == planted and delta[list(planted)].min() > 0.5, method


def test_scouter_learns_in_two_epochs(fitted):
    history = fitted["scouter"].history_
    assert [h["epoch"] for h in history] == [1, 2] and history[1]["loss"] < history[0]["loss"]


def test_unknown_method_or_option_is_input_error():
    with pytest.raises(InputError, match="expected one of"):
        make_predictor("gears")
    with pytest.raises(InputError, match="takes no option epochs"):
        make_predictor("ridge", epochs=3)


def test_gene_without_row_is_input_error(fitted):
    with pytest.raises(InputError, match="gene SYN99 .*has no embedding in set 'synthetic'"):
        fitted["ridge"].predict(["SYN99+ctrl"])
