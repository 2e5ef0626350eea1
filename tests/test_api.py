"""The Python API as a scanpy user meets it: AnnData in memory in, AnnData predictions and DataFrame evaluations
out; a model trained and saved from Python evaluates with no other argument."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import scouter_local as sl


def test_saved_model_evaluates_without_arguments(norman_path, norman_options, screen_db, embeddings, tmp_path):
    """Trained from an h5ad file in Python, saved, loaded: evaluate(path) finds the data, database and split."""
    data = sl.prepare_data(norman_path, norman_options, screen_db, embeddings)
    model = sl.train(data, embeddings, method="train_mean", seed=2)
    path = sl.save_model(model, tmp_path / "m")
    in_memory, reloaded = sl.evaluate(model), sl.evaluate(path)
    assert list(reloaded.conditions["condition"]) == model.split_.test
    pd.testing.assert_frame_equal(reloaded.conditions, in_memory.conditions)
    assert reloaded.summary.loc["overall", "n"] == len(model.split_.test)


def test_in_memory_screen_needs_its_data_after_loading(norman_path, norman_options, screen_db, embeddings, tmp_path):
    adata = ad.read_h5ad(norman_path)
    data = sl.prepare_data(adata[adata.obs["condition"] != "IER5L"], norman_options, screen_db, embeddings)
    model = sl.train(data, embeddings, method="train_mean", seed=2)
    assert sl.evaluate(model).n == len(model.split_.test)  # the fitted model still holds its data
    loaded = sl.load_model(sl.save_model(model, tmp_path / "m"))
    with pytest.raises(sl.InputError, match="trained on an AnnData in memory .* pass data=ADATA"):
        sl.evaluate(loaded)
    assert sl.evaluate(loaded, data).n == len(data.perturbations)


def test_predictions_are_an_anndata(norman, embeddings):
    model = sl.train(norman, embeddings, method="additive", seed=1)
    pred = sl.predict(model, ["KLF1+MAP2K6", "MAP2K6+KLF1", "IER5L"])  # spellings of one condition count once
    assert pred.shape == (2, norman.n_genes) and list(pred.var_names) == norman.genes
    assert list(pred.obs["condition"]) == ["KLF1+MAP2K6", "IER5L+ctrl"]
    np.testing.assert_allclose(pred.layers["delta"], pred.X - norman.control_mean(), atol=1e-6)
    uns = pred.uns["scouter_local"]
    assert uns["method"] == "additive" and uns["embedding"]["fingerprint"] == embeddings.fingerprint
    assert set(pred.obs["subgroup"]) <= {"single", "single_seen", "combo_seen0", "combo_seen1", "combo_seen2"}
