"""Hostile input to training, saving, loading and predicting (issue #21): out-of-range options, damaged model folders,
a lone string where a list belongs, a full disk. Each is one :class:`InputError` line before any work; small
synthetic inputs only.
"""

from __future__ import annotations

import collections
import json
import shutil
from pathlib import Path

import pytest
import torch

from benchmarks.hostile_inputs import tiny_data, tiny_inputs
from gene_corpus.errors import InputError
from scouter_local.predictors.checkpoint import load_model, save_model
from scouter_local.predictors.prediction import predict, write_predictions
from scouter_local.predictors.training import train


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    return tiny_inputs(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def fitted(tiny):
    data, embeddings = tiny_data(tiny)
    return data, embeddings, train(data, embeddings, method="ridge", seed=1)


@pytest.fixture(scope="module")
def model_dir(fitted, tmp_path_factory) -> Path:
    return save_model(fitted[2], tmp_path_factory.mktemp("models") / "ridge")


@pytest.mark.parametrize(
    "config, message",
    [
        ({"epochs": 0}, "epochs=0: expected a whole number from 1"),
        ({"epochs": -5}, "epochs=-5"),
        ({"batch_size": 0}, "batch_size=0: expected a whole number from 2"),
        ({"batch_size": 1}, "batch_size=1"),
        ({"epochs": 2.5}, "epochs=2.5"),
        ({"n_pred": 0}, "n_pred=0"),
    ],
)
def test_scouter_options_out_of_range_refused_before_training(fitted, config, message):
    """`--epochs 0` used to save an untrained network as "trained scouter"; `--batch-size 0` ended in a traceback."""
    data, embeddings, _ = fitted
    with pytest.raises(InputError, match=message):
        train(data, embeddings, method="scouter", **config)


def _damaged(model_dir: Path, tmp_path: Path, write) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    write(copy)
    return copy


@pytest.mark.parametrize(
    "what, write, message",
    [
        ("empty model.pt", lambda d: (d / "model.pt").write_bytes(b""), "not a readable tensor file"),
        ("text model.pt", lambda d: (d / "model.pt").write_text("hello\n"), "not a readable tensor file"),
        ("tensor list", lambda d: torch.save([torch.zeros(2)], d / "model.pt"), "holds no model state"),
        (
            "manifest without genes",
            lambda d: (d / "manifest.json").write_text(
                json.dumps({k: v for k, v in json.loads((d / "manifest.json").read_text()).items() if k != "genes"})
            ),
            "'genes' is missing or of the wrong type",
        ),
        ("manifest a list", lambda d: (d / "manifest.json").write_text("[1, 2]"), "format_version None"),
    ],
)
def test_damaged_model_folder_is_one_error(model_dir, tmp_path, what, write, message):
    """An empty model.pt used to raise IndexError inside the error handler."""
    damaged = _damaged(model_dir, tmp_path, write)
    with pytest.raises(InputError, match=message) as info:
        load_model(damaged)
    assert len(str(info.value).splitlines()) == 1


def test_a_lone_string_is_one_perturbation(fitted):
    """`predict(model, 'KLF1')` used to iterate the string: 'K', 'L', 'F', '1'."""
    _, _, model = fitted
    assert list(predict(model, "KLF1").obs["condition"]) == ["KLF1+ctrl"]
    for bad in (None, 1.5, {"KLF1": 1}):
        with pytest.raises(TypeError, match="perturbations"):
            predict(model, bad)
    with pytest.raises(TypeError, match="model"):
        predict(None, ["KLF1"])


@pytest.mark.parametrize("text", ["KLF1+KLF1", "KIAA1804+MAP3K21"])
def test_a_gene_named_twice_is_not_predicted_as_a_combination(fitted, text):
    """`KLF1+KLF1` used to be predicted as a two-gene combination (so did an old symbol beside its new one)."""
    with pytest.raises(InputError, match=r"names gene (KLF1|MAP3K21) twice"):
        predict(fitted[2], [text])


def _no_space(monkeypatch) -> None:
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr("gene_corpus.files.shutil.disk_usage", lambda path: usage(1 << 30, 1 << 30, 4096))


@pytest.mark.parametrize("suffix", [".h5ad", ".csv"])
def test_full_disk_refused_before_writing_predictions(fitted, tmp_path, monkeypatch, suffix):
    """`predict --out small/p.h5ad` on a full disk used to end in a segmentation fault."""
    predictions = predict(fitted[2], ["KLF1", "CEBPA+KLF1"])
    _no_space(monkeypatch)
    out = tmp_path / f"p{suffix}"
    with pytest.raises(InputError, match="not enough free space"):
        write_predictions(predictions, out)
    assert list(tmp_path.iterdir()) == []


def test_full_disk_refused_before_saving_a_model(fitted, tmp_path, monkeypatch):
    _no_space(monkeypatch)
    with pytest.raises(InputError, match="not enough free space"):
        save_model(fitted[2], tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_save_model_wants_a_predictor(tmp_path):
    with pytest.raises(TypeError, match="predictor"):
        save_model(None, tmp_path / "m")
    with pytest.raises(TypeError, match="model folder"):
        load_model(None)
