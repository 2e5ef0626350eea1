"""Post-processing of a set's vectors (centre, whiten), stored and rebuilt; unit rows; the set's row map."""

from __future__ import annotations

import numpy as np
import pytest

from gene_corpus.errors import InputError
from scouter_local.embedding.sets import PostProcessor, unit_rows
from tests._synthetic import embedding_set


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6)) + 3.0  # correlated, off-centre


def test_center_and_whiten(vectors):
    centred = PostProcessor("center").fit(vectors).transform(vectors)
    np.testing.assert_allclose(centred, vectors - vectors.mean(0), atol=1e-5)
    white = PostProcessor("whiten").fit(vectors).transform(vectors)
    cov = np.cov(white, rowvar=False)  # unit variances (up to the eps floor), no covariance
    assert np.diag(cov).min() > 0.99 and np.abs(cov - np.diag(np.diag(cov))).max() < 1e-6
    assert white.dtype == np.float32
    assert PostProcessor("whiten", n_components=2).fit(vectors).transform(vectors).shape == (200, 2)


@pytest.mark.parametrize("mode", ["none", "center", "whiten"])
def test_stored_parameters_rebuild_the_same_transform(vectors, mode):
    fitted = PostProcessor(mode).fit(vectors)
    again = PostProcessor.from_bytes(mode, fitted.to_bytes())
    np.testing.assert_array_equal(again.transform(vectors[:5]), fitted.transform(vectors[:5]))


def test_bad_mode_or_too_few_genes():
    with pytest.raises(InputError, match="'pca' is not one of none, center, whiten"):
        PostProcessor("pca")
    with pytest.raises(InputError, match="needs at least 2 genes"):
        PostProcessor("center").fit(np.ones((1, 3)))


def test_unit_rows_and_row_map():
    x = unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(x, [[0.6, 0.8], [0.0, 0.0]])  # a zero row stays zero
    emb = embedding_set(["B", "A", "C"], dim=4)
    assert emb.rows() == {"B": 0, "A": 1, "C": 2} and emb.dim == 4 and emb.vectors.dtype == np.float32
