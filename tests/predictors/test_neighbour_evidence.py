"""gene_delta's neighbour evidence on a synthetic screen whose embeddings carry known signal (or none).

Pseudo-bulk deltas are generated from latent factors; the embedding of a gene is its factors plus noise (an
informative embedding) or another gene's (a shuffled one). Cross-validation over the trained genes must pick
λ > 0 for the first and fall back to the prior (λ = 0) for the second; the estimate of an unseen gene must then be
closer to its true delta than the prior. (Whether a real embedding carries signal on a real screen is measured by
``benchmark`` against the same method on shuffled embeddings, never asserted in a test.)"""

from __future__ import annotations

import numpy as np
import pytest

from scouter_local.predictors.training import train


def _pearson(a, b) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def test_informative_embedding_gets_neighbour_evidence(screen):
    data, informative, _, split, truth = screen
    model = train(data, informative, method="gene_delta", split=split, seed=1)
    chosen = model.neighbour_
    assert 0 < chosen["lambda"] <= 1 and chosen["gain"] > chosen["gain_se"] > 0
    assert set(model.cv_curve_) >= {"0", "0.5", "1"} and model.cv_curve_["0"] == pytest.approx(chosen["prior_score"])
    predicted = model.predict(split.test)
    gain = [_pearson(p, truth[c]) - _pearson(model.prior_delta_, truth[c]) for p, c in zip(predicted, split.test)]
    assert np.mean(gain) > 0.1  # closer to the truth than the prior
    evidence = model.evidence(["G210"])["G210"]
    assert evidence["source"] == "neighbours" and len(evidence["neighbours"]) == 5
    weights = [w for _, w in evidence["neighbours"]]
    assert weights == sorted(weights, reverse=True) and all(g in model.known_genes_ for g, _ in evidence["neighbours"])


def test_shuffled_embedding_falls_back_to_the_prior(screen):
    data, _, shuffled, split, _ = screen
    model = train(data, shuffled, method="gene_delta", split=split, seed=1)
    assert model.neighbour_["lambda"] == 0.0
    assert np.allclose(model.predict(split.test), model.prior_delta_)
    assert model.evidence(["G210"])["G210"] == {"source": "prior", "neighbours": []}


def test_neighbours_off_is_the_prior(screen):
    data, informative, _, split, _ = screen
    model = train(data, informative, method="gene_delta", split=split, seed=1, neighbours=False)
    assert model.neighbour_["lambda"] == 0.0 and model.cv_curve_ == {}
    assert np.allclose(model.predict(split.test[:3]), model.prior_delta_)
