"""Fixtures of the predictor tests on the real Norman screen: a split and a short Scouter fit."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def norman_split(norman):
    from scouter_local.data.splits import make_split

    return make_split(norman, "scouter", seed=1)


@pytest.fixture(scope="session")
def scouter_fit(norman, embeddings, norman_split):
    """Scouter trained 3 epochs on split seed 1 (small but real)."""
    from scouter_local.predictors.training import train

    return train(norman, embeddings, split=norman_split, method="scouter", seed=1, epochs=3)
