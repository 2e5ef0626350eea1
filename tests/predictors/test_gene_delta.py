"""gene_delta on real Norman 2019 cells: the structure of its predictions, its manifest, save/load.

Whether it beats the baselines is measured by ``benchmark`` on test conditions not used for choosing anything,
never asserted here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gene_corpus.errors import InputError
from scouter_local.conditions import genes_of
from scouter_local.data.splits import make_split
from scouter_local.predictors import make_predictor
from scouter_local.predictors.checkpoint import load_model, save_model
from scouter_local.predictors.gene_delta import GeneDeltaPredictor
from scouter_local.predictors.training import train

SEED = 1


@pytest.fixture(scope="session")
def split(norman):
    return make_split(norman, "scouter", seed=SEED)


@pytest.fixture(scope="session")
def fitted(norman, embeddings, split) -> GeneDeltaPredictor:
    return train(norman, embeddings, split=split, method="gene_delta", seed=SEED)


def test_structure_of_predictions(norman, embeddings, split, fitted):
    ctrl = fitted.control_mean_
    singles = {genes_of(c)[0] for c in split.train if len(genes_of(c)) == 1}
    # a trained single is predicted as its observed mean
    trained = next(c for c in split.train if len(genes_of(c)) == 1)
    np.testing.assert_allclose(fitted.predict([trained])[0], norman.condition_mean(trained), atol=1e-5)
    # a pair of trained singles is control + the sum of their deltas
    a, b = sorted(singles)[:2]
    pair = fitted.predict([f"{a}+{b}"])[0]
    want = norman.condition_mean(f"{a}+ctrl") + norman.condition_mean(f"{b}+ctrl") - ctrl
    np.testing.assert_allclose(pair, want, atol=1e-4)
    # genes of training combinations without their single get a delta from those combinations
    combo_only = {g for c in split.train for g in genes_of(c)} - singles
    assert combo_only and all(fitted.gene_source_[g] == "combination" for g in combo_only)
    # without neighbour evidence a gene training never saw gets the prior: the average of train_mean's and the mean
    # single's change
    unseen = [c for c in split.test if len(genes_of(c)) == 1 and genes_of(c)[0] not in fitted.gene_source_]
    assert unseen
    deltas = np.stack([norman.condition_mean(c) - ctrl for c in split.train])
    single_deltas = np.stack(
        [norman.condition_mean(c) - ctrl for c in split.train if genes_of(c)[0] in singles and len(genes_of(c)) == 1]
    )
    prior_only = train(norman, embeddings, split=split, method="gene_delta", seed=SEED, neighbours=False)
    np.testing.assert_allclose(
        prior_only.predict(unseen[:1])[0] - ctrl, 0.5 * deltas.mean(0) + 0.5 * single_deltas.mean(0), atol=1e-4
    )
    # with it (the default), the estimate is the prior plus lambda times the centred neighbour evidence
    lam, evidence = fitted.neighbour_["lambda"], fitted.neighbour_evidence([genes_of(unseen[0])[0]])[0]
    pool = fitted.gene_deltas_[: len(singles)]
    np.testing.assert_allclose(
        fitted.predict(unseen[:1])[0] - ctrl, fitted.prior_delta_ + lam * (evidence @ pool - pool.mean(0)), atol=1e-4
    )


def test_save_load_round_trip(tmp_path, norman, embeddings, split, fitted):
    path = save_model(fitted, tmp_path / "model")
    fitted_meta = json.loads((path / "manifest.json").read_text())["fitted"]
    assert set(fitted_meta["neighbour"]) >= {"k", "tau", "lambda", "score", "prior_score", "gain", "gain_se"}
    assert fitted_meta["cv_curve"]["0"] == pytest.approx(fitted_meta["neighbour"]["prior_score"])
    loaded = load_model(path, embeddings, genes=norman.genes)
    assert isinstance(loaded, GeneDeltaPredictor) and loaded.get_config() == fitted.get_config()
    conds = split.test + split.val
    np.testing.assert_array_equal(loaded.predict(conds), fitted.predict(conds))


def test_bad_option_is_input_error():
    with pytest.raises(InputError, match="prior_single_weight"):
        make_predictor("gene_delta", prior_single_weight=1.5)
    with pytest.raises(InputError, match="takes no option"):
        make_predictor("gene_delta", alpha=1.0)
