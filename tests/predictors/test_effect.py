"""The effect model: calibrated on scores with known probabilities, the array form predicts what scikit-learn's
fitted objects do (so a saved model predicts what the fitted one did), seeded, and refuses too few labels."""

from __future__ import annotations

import numpy as np
import pytest

from gene_corpus.errors import InputError
from scouter_local.predictors.effect import EffectModel, WellStudied, combined_probability


def known_probabilities(n: int, *, dim: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, p, y)``: Gaussian vectors, the true probability of an effect (a logistic of one direction, base rate
    about 0.15) and labels drawn from it."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim))
    p = 1 / (1 + np.exp(-(1.5 * X[:, 0] + X[:, 1] - 2.5)))
    return X, p, (rng.random(n) < p).astype(int)


@pytest.fixture(scope="module")
def fitted() -> EffectModel:
    X, _, y = known_probabilities(3000)
    return EffectModel(model="logistic", stacking="never", random_state=1).fit(X, y, strength=X[:, 0] + X[:, 1])


def test_probabilities_are_calibrated_on_known_probabilities(fitted):
    X, p, y = known_probabilities(4000, seed=1)
    predicted = fitted.predict_effect(X)
    assert np.abs(predicted - p).mean() < 0.04
    # reliability: within each decile of the prediction, the mean prediction matches the mean true probability
    bins = np.quantile(predicted, np.linspace(0, 1, 11))
    which = np.clip(np.searchsorted(bins, predicted, side="right") - 1, 0, 9)
    gaps = [abs(predicted[which == b].mean() - p[which == b].mean()) for b in range(10)]
    assert max(gaps) < 0.05 and np.mean(gaps) < 0.015
    assert abs(predicted.mean() - y.mean()) < 0.02
    assert np.corrcoef(fitted.predict_strength(X), X[:, 0] + X[:, 1])[0, 1] > 0.95


def test_the_logistic_wins_on_a_linear_truth():
    X, _, y = known_probabilities(300)
    fitted = EffectModel(stacking="never").fit(X, y)
    assert fitted.model_ == "logistic" and fitted.n_neighbors_ is None
    assert fitted.cv_log_loss_["logistic"] == min(fitted.cv_log_loss_.values())
    assert set(fitted.cv_log_loss_) == {"logistic", "knn_5", "knn_10", "knn_20", "knn_40", "knn_80"}
    assert fitted.n_folds_ == 5 and 0 < fitted.C_ <= 100 and not fitted.uses_well_studied_


@pytest.mark.parametrize("model", ["logistic", "knn"])
def test_arrays_predict_what_scikit_learn_predicts(model):
    X, _, y = known_probabilities(400)
    fitted = EffectModel(model=model, stacking="never").fit(X, y, strength=X[:, 0])
    assert fitted.model_ == model
    new = known_probabilities(300, seed=2)[0]
    assert np.allclose(fitted.predict_effect(new), fitted.calibrated_.predict_proba(new)[:, 1], atol=1e-12)
    arrays, values = fitted.state()
    again = EffectModel.from_state(arrays, values)
    assert np.array_equal(again.predict_effect(new), fitted.predict_effect(new))
    assert np.array_equal(again.predict_strength(new), fitted.predict_strength(new))


def test_a_fit_is_seeded():
    X, _, y = known_probabilities(200)
    a = EffectModel(random_state=3, stacking="never").fit(X, y).predict_effect(X)
    b = EffectModel(random_state=3, stacking="never").fit(X, y).predict_effect(X)
    assert np.array_equal(a, b)


def test_stacking_uses_well_studied_features_that_carry_the_label():
    X, _, y = known_probabilities(600)
    noise = np.random.default_rng(5).normal(size=(600, 2))
    studied = np.column_stack([2.0 * y + noise[:, 0], noise[:, 1]])
    fitted = EffectModel(random_state=0).fit(X, y, well_studied=studied)
    assert (
        fitted.uses_well_studied_
        and fitted.stacking_log_loss_
        < fitted.cv_log_loss_["logistic" if fitted.model_ == "logistic" else f"knn_{fitted.n_neighbors_}"]
    )
    assert fitted.well_studied_weights_.shape == (3,) and fitted.well_studied_weights_[1] > 0
    with pytest.raises(InputError, match="pass well_studied="):
        fitted.predict_effect(X)
    arrays, values = fitted.state()
    assert np.array_equal(
        EffectModel.from_state(arrays, values).predict_effect(X, studied), fitted.predict_effect(X, studied)
    )
    unused = EffectModel(model="logistic").fit(X, y, well_studied=noise)
    assert not unused.uses_well_studied_ and unused.stacking_log_loss_ is not None
    # the stacked model's first stage is the embedding alone: what stacking="never" fits (the benchmark's
    # "embedding only" reads it instead of fitting again)
    alone = EffectModel(random_state=0, stacking="never").fit(X, y, well_studied=studied)
    assert np.array_equal(fitted.predict_embedding(X), alone.predict_effect(X))
    assert np.array_equal(alone.predict_embedding(X), alone.predict_effect(X))


def test_well_studied_baseline_is_a_plain_logistic():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(500, 2))
    y = (rng.random(500) < 1 / (1 + np.exp(-(2 * W[:, 0] - 1)))).astype(int)
    baseline = WellStudied().fit(W, y)
    assert baseline.weights_[0] > 1 and abs(baseline.weights_[1]) < 0.5
    assert baseline.predict_proba(W).shape == (500, 2)


@pytest.mark.parametrize(
    ("n", "positives", "message"),
    [
        (9, 5, "only 9 labelled genes to learn from; the effect model needs at least 10"),
        (
            30,
            4,
            "only 4 of 30 labelled genes have an effect and 26 have none; the effect model needs at least 5 of each",
        ),
        (30, 27, "only 27 of 30 labelled genes have an effect and 3 have none"),
    ],
)
def test_too_few_labels_are_one_line_errors(n, positives, message):
    X = np.random.default_rng(0).normal(size=(n, 4))
    y = np.r_[np.ones(positives), np.zeros(n - positives)]
    with pytest.raises(InputError, match=message) as info:
        EffectModel().fit(X, y)
    assert "\n" not in str(info.value)


def test_folds_follow_the_smaller_label():
    X, _, _ = known_probabilities(60)
    y = np.r_[np.ones(7), np.zeros(53)].astype(int)
    assert EffectModel(model="logistic", cv=10, stacking="never").fit(X, y).n_folds_ == 7


def test_a_combination_has_an_effect_when_either_gene_does():
    assert combined_probability([0.5]) == 0.5
    assert combined_probability([0.5, 0.2]) == pytest.approx(0.6)
