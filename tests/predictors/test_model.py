"""Scouter and the baselines: training behaviour, predictions, checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from gene_corpus.errors import InputError
from scouter_local.data.splits import Split
from scouter_local.embedding.sets import EmbeddingSet
from scouter_local.predictors import BASELINES, DEFAULT_METHOD, EMBEDDING_METHODS, METHODS, make_predictor, method_names
from scouter_local.predictors.checkpoint import load_model, save_model
from scouter_local.predictors.scouter.loader import PairLoader
from scouter_local.predictors.scouter.training import BestWeights
from scouter_local.predictors.training import train


def test_registry_has_scouter_and_baselines():
    assert {"scouter", *BASELINES} <= set(METHODS)
    with pytest.raises(InputError, match="expected one of"):
        make_predictor("gears")
    with pytest.raises(InputError, match="takes no option epochs"):
        make_predictor("ridge", epochs=3)


def test_method_lists_come_from_the_class_traits():
    assert method_names() == list(METHODS) and method_names()[0] == DEFAULT_METHOD  # the demo reports the first
    assert BASELINES == ("no_change", "train_mean", "additive", "ridge", "knn") == tuple(method_names(baseline=True))
    assert EMBEDDING_METHODS == ("gene_delta", "scouter", "ridge", "knn")
    assert method_names(light=True) == ["gene_delta", "no_change", "train_mean", "additive", "ridge", "knn"]
    assert method_names(light=False) == ["scouter"]
    assert method_names(uses_embeddings=True, baseline=False) == ["gene_delta", "scouter"]
    with pytest.raises(InputError, match="method trait 'fast': expected one of uses_embeddings, light, baseline"):
        method_names(fast=True)


def test_command_line_method_defaults_are_the_registry_lists():
    """The ``--methods`` defaults stay literals (``--help`` imports no predictor), spelling the registry's lists."""
    from scouter_local.cli.benchmark import benchmark_cmd, compare_models
    from scouter_local.workflows.compare import default_methods

    default = {
        c.name: next(p.default for p in c.params if p.name == "methods") for c in (benchmark_cmd, compare_models)
    }
    assert default["benchmark"] == ",".join(method_names())
    assert default["compare-models"] == ",".join(default_methods()) == "gene_delta,scouter,ridge,knn,train_mean"


def test_registry_imports_no_method():
    code = (
        "import sys; from scouter_local.predictors import DEFAULT_METHOD, METHODS, method_class; "
        "print('torch' in sys.modules, 'scouter_local.predictors.base' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_scouter_predicts_mean_profiles(scouter_fit, norman, norman_split):
    pred = scouter_fit.predict(norman_split.test)
    assert pred.shape == (7, norman.n_genes) and np.isfinite(pred).all()
    assert scouter_fit.net_.encoder[0].in_features == 500 and scouter_fit.net_.encoder[-1].out_features == 64
    assert [r["epoch"] for r in scouter_fit.history_] == [1, 2, 3]
    assert all(r["val_loss"] is not None and r["seconds"] > 0 for r in scouter_fit.history_)


def test_early_stopping_restores_best_weights(scouter_fit, norman, norman_split, embeddings):
    """The weights kept are those of the epoch with the lowest validation loss, not the last epoch's."""
    val_pairs = PairLoader(
        norman.subset(norman_split.val), scouter_fit.condition_embedding, np.random.RandomState(scouter_fit.seed)
    )
    loss = scouter_fit.training_plan().validation_loss(scouter_fit.net_, val_pairs, scouter_fit.device_)
    val_losses = [r["val_loss"] for r in scouter_fit.history_]
    kept = val_losses[scouter_fit.best_epoch_ - 1]
    assert loss == pytest.approx(kept, rel=1e-5)
    assert min(val_losses) > kept - scouter_fit.min_delta  # no later epoch improved by more than min_delta


def test_best_weights_are_a_copy_kept_until_a_real_gain():
    net = torch.nn.Linear(2, 1)
    best = BestWeights(min_delta=0.1)
    best.keep(1.0, net, 0)
    kept = best.state["weight"].clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    assert not best.update(0.95, net, 1) and best.stale == 1  # a gain of 0.05 is not above min_delta
    assert torch.equal(best.state["weight"], kept)  # the live weights moved, the copy did not
    assert best.update(0.5, net, 2) and (best.loss, best.epoch, best.stale) == (0.5, 2, 0)
    assert torch.equal(best.state["weight"], net.weight.detach())


def test_seeded_training_is_reproducible(norman, embeddings, norman_split):
    small = Split(train=norman_split.train[:3], val=norman_split.val[:1], test=norman_split.test)
    a = train(norman, embeddings, split=small, method="scouter", seed=3, epochs=1).predict(small.test)
    b = train(norman, embeddings, split=small, method="scouter", seed=3, epochs=1).predict(small.test)
    c = train(norman, embeddings, split=small, method="scouter", seed=4, epochs=1).predict(small.test)
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_training_streamed_from_backed_file(
    norman_path, norman_options, screen_db, embeddings, norman_split, monkeypatch
):
    """Backed cells read fetch by fetch train the same weights as in memory when the visiting order is the same;
    with small blocks and fetches every perturbed cell is still visited once per epoch."""
    from scouter_local.data.link import prepare_data

    small = Split(train=norman_split.train[:4], val=norman_split.val[:1], test=norman_split.test[:2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole, backed = (
            prepare_data(norman_path, norman_options, screen_db, embeddings, backed=b) for b in (False, True)
        )
    assert backed.cells.backed and not whole.cells.backed
    monkeypatch.setattr(PairLoader, "block_rows", 1)
    monkeypatch.setattr(PairLoader, "fetch_rows", 10**9)
    a = train(whole, embeddings, split=small, method="scouter", seed=3, epochs=2)
    b = train(backed, embeddings, split=small, method="scouter", seed=3, epochs=2)
    assert [r["loss"] for r in a.history_] == [r["loss"] for r in b.history_]
    assert np.array_equal(a.predict(small.test), b.predict(small.test))

    monkeypatch.setattr(PairLoader, "block_rows", 16)
    monkeypatch.setattr(PairLoader, "fetch_rows", 100)
    part = backed.subset(small.train)
    pairs = PairLoader(part, a.condition_embedding, np.random.RandomState(0))
    seen = np.concatenate([true.numpy() for _, _, true, _, _ in pairs.batches(10**6, None, torch.device("cpu"))])
    expected = part.expression(part.conditions != "ctrl")
    assert seen.shape == expected.shape and np.array_equal(seen, expected)  # unshuffled: file order, all cells
    shuffled = [true for _, _, true, _, _ in pairs.batches(32, torch.Generator().manual_seed(0), torch.device("cpu"))]
    assert len(shuffled) > 3 and sum(len(t) for t in shuffled) > 0.8 * len(expected)


def test_fewer_cells_than_batch_size(norman, embeddings):
    tiny = Split(train=["KLF1+ctrl", "MAP2K6+ctrl"], val=["MAPK1+ctrl"], test=["KLF1+MAP2K6"])
    model = train(norman, embeddings, split=tiny, method="scouter", seed=1, epochs=2, batch_size=512)  # 200 cells < 512
    assert all(np.isfinite(r["loss"]) for r in model.history_)
    assert np.isfinite(model.predict(tiny.test)).all()


def test_baselines(norman, embeddings, norman_split):
    split = Split(
        train=["KLF1+ctrl", "MAP2K6+ctrl", "MAPK1+ctrl", "TGFBR2+ctrl"], val=[], test=["KLF1+MAP2K6", "IER5L+ctrl"]
    )
    ctrl = norman.control_mean()
    delta = {c: norman.condition_mean(c) - ctrl for c in split.train}
    preds = {m: train(norman, embeddings, split=split, method=m).predict(split.test) for m in BASELINES}
    assert np.allclose(preds["no_change"], ctrl)
    assert np.allclose(
        preds["train_mean"][0], np.mean([norman.condition_mean(c) for c in split.train], axis=0), atol=1e-6
    )
    assert np.allclose(preds["additive"][0], ctrl + delta["KLF1+ctrl"] + delta["MAP2K6+ctrl"], atol=1e-5)
    assert np.allclose(preds["additive"][1], ctrl)  # IER5L has no trained single: no change
    knn = make_predictor("knn", k=1).fit(norman.subset(split.train), embeddings)
    near = knn.predict(["IER5L+ctrl"])[0] - ctrl
    assert any(np.allclose(near, d, atol=1e-5) for d in delta.values())
    for m in ("ridge", "knn"):
        assert preds[m].shape == (2, norman.n_genes) and np.isfinite(preds[m]).all()


@pytest.mark.parametrize("method", ["scouter", *BASELINES])
def test_checkpoint_round_trip(method, scouter_fit, norman, embeddings, norman_split, tmp_path):
    model = scouter_fit if method == "scouter" else train(norman, embeddings, split=norman_split, method=method)
    out = save_model(model, tmp_path / method)
    state = torch.load(out / "model.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == method and manifest["genes"] == norman.genes
    assert manifest["embedding"]["fingerprint"] == embeddings.fingerprint
    assert json.loads((out / "split.json").read_text())["test"] == norman_split.test
    loaded = load_model(out, embeddings, genes=norman.genes)
    assert np.allclose(loaded.predict(norman_split.test), model.predict(norman_split.test), atol=1e-6)


def test_checkpoint_refuses_other_embeddings_or_gene_order(scouter_fit, norman, embeddings, norman_split, tmp_path):
    out = save_model(scouter_fit, tmp_path / "m")
    other = replace(embeddings, name="other", fingerprint="0" * 32)
    with pytest.raises(InputError, match="trained with embedding set 'minilm'"):
        load_model(out, other)
    with pytest.raises(InputError, match="in another order"):
        load_model(out, embeddings, genes=norman.genes[::-1])
    with pytest.raises(InputError, match="exists and is not empty"):
        save_model(scouter_fit, out)


def test_unknown_gene_at_prediction(scouter_fit):
    with pytest.raises(InputError, match="gene NOTAGENE .* has no embedding in set 'minilm'"):
        scouter_fit.predict(["NOTAGENE+ctrl"])


def test_pseudobulk_trains_without_split(replogle_files, screen_db, embeddings):
    from scouter_local.data.link import prepare_data
    from scouter_local.data.options import DataOptions
    from scouter_local.data.splits import make_split

    data = prepare_data(
        replogle_files[0], DataOptions(condition_key="target_ensembl", single_format="bare"), screen_db, embeddings
    )
    split = make_split(data, "none")
    model = train(
        data, embeddings, split=split, method="scouter", seed=1, epochs=3
    )  # one row per condition, batch > rows
    assert len(model.history_) == 3 and all(r["val_loss"] is None for r in model.history_)
    pred = model.predict(data.perturbations[:3])
    assert pred.shape == (3, data.n_genes) and np.isfinite(pred).all()


def test_embedding_set_is_required_for_unseen_rows(scouter_fit, embeddings):
    """A gene outside the training data is looked up in the embedding set by its current symbol."""
    gene = next(s for s in embeddings.symbols if s not in scouter_fit.gene_rows_)
    assert scouter_fit.predict([f"{gene}+ctrl"]).shape == (1, 500)
    assert isinstance(embeddings, EmbeddingSet)
