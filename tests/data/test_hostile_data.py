"""Hostile input at the data door (issue #21): files and AnnData objects that used to give a wrong but plausible
result, a hang or a traceback now give one :class:`InputError` line (a ``ValueError``; a ``TypeError`` for a wrong
type) before any work. Small synthetic screens written in ``tmp_path``; no shared data needed.
"""

from __future__ import annotations

import json
import re
import subprocess
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from benchmarks.hostile_inputs import SET, screen_adata, tiny_data, tiny_inputs, zeroed_copy
from gene_corpus.errors import InputError
from scouter_local.data.link import prepare_data
from scouter_local.data.options import DataOptions
from scouter_local.data.read import perturbation_data, read_perturbation_data
from scouter_local.data.splits import make_split
from scouter_local.datasets import PRESETS
from scouter_local.predictors.training import train
from tests.conftest import SCOUTER_LOCAL


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    return tiny_inputs(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def prepared(tiny):
    return tiny_data(tiny)


def _changed(**change) -> ad.AnnData:
    adata = screen_adata()
    for name, value in change.items():
        setattr(adata, name, value)
    return adata


# ------------------------------------------------------------------------------------------ values and shape
@pytest.mark.filterwarnings("ignore:.*look like raw counts")
@pytest.mark.parametrize(
    "what, change, message",
    [
        ("NaN in X", lambda a: a.X.__setitem__((5, 3), np.nan), "NaN or infinite"),
        ("inf in X", lambda a: a.X.__setitem__((70, 3), np.inf), "NaN or infinite"),
        ("values ×1e30", lambda a: setattr(a, "X", a.X * 1e30), "values reach about"),
    ],
)
def test_non_finite_or_huge_values_refused(what, change, message):
    """NaN/inf used to train (exit 0) and fail later in scikit-learn; ×1e30 scored NormMSE nan with exit 0."""
    adata = screen_adata()
    change(adata)
    with pytest.raises(InputError, match=message):
        perturbation_data(adata)


def test_no_genes_refused():
    """A file with 0 genes used to train a 0-gene model whose predictions were an empty CSV."""
    with pytest.raises(InputError, match="no readout genes"):
        perturbation_data(screen_adata()[:, []].copy())


def test_all_control_refused():
    """An all-control file used to end in an AttributeError."""
    adata = screen_adata()
    with pytest.raises(InputError, match="every selected row is control"):
        perturbation_data(adata[adata.obs["condition"] == "ctrl"].copy())


def test_duplicate_gene_names_made_unique_with_a_warning():
    """Duplicate var_names used to be accepted silently: the prediction CSV had two columns of one name."""
    adata = screen_adata()
    adata.var_names = ["R0", "R0", *adata.var_names[2:]]
    with pytest.warns(UserWarning, match=r"occur more than once \(R0\).*R0 → R0-1"):
        data = perturbation_data(adata)
    assert data.genes[:2] == ["R0", "R0-1"] and len(set(data.genes)) == len(data.genes)


def test_conditions_differing_only_in_case_refused():
    adata = screen_adata()
    conditions = adata.obs["condition"].astype(str).to_numpy().copy()
    first = np.flatnonzero(conditions == "KLF1+ctrl")[:6]
    conditions[first] = "klf1+ctrl"
    adata.obs["condition"] = conditions
    with pytest.raises(InputError, match="differ only in case"):
        perturbation_data(adata)


def test_a_gene_named_twice_is_no_combination():
    adata = screen_adata()
    adata.obs["condition"] = adata.obs["condition"].astype(str).replace("CEBPA+KLF1", "KLF1+KLF1")
    with pytest.raises(InputError, match="names gene KLF1 twice"):
        perturbation_data(adata)


def test_min_cells_below_one_refused():
    with pytest.raises(InputError, match="min_cells=0"):
        DataOptions(min_cells=0)


# ------------------------------------------------------------------------------------------ wrong types
@pytest.mark.parametrize("bad", [np.zeros((3, 3)), None, pd.DataFrame(np.zeros((3, 3)))], ids=["ndarray", "None", "df"])
def test_api_wants_an_anndata(bad, tiny, prepared):
    """A NumPy array, None or a DataFrame where an AnnData belongs used to give a raw AttributeError/TypeError."""
    _, embeddings = prepared
    calls = [lambda: perturbation_data(bad), lambda: prepare_data(bad, DataOptions(), tiny["db"], embeddings)]
    if bad is None:
        calls.append(lambda: read_perturbation_data(bad))
    for call in calls:
        with pytest.raises(TypeError, match="AnnData|path") as info:
            call()
        assert isinstance(info.value, InputError) and len(str(info.value).splitlines()) == 1


def test_api_wants_prepared_data_and_an_embedding_set(prepared):
    data, embeddings = prepared
    for call, word in (
        (lambda: train(screen_adata(), embeddings), "PerturbationData"),
        (lambda: train(data, None), "EmbeddingSet"),
        (lambda: make_split(screen_adata(), "scouter"), "PerturbationData"),
        (lambda: make_split(data, 5), "split"),
        (lambda: perturbation_data(screen_adata(), {"control": "ctrl"}), "DataOptions"),
    ):
        with pytest.raises(InputError, match=word) as info:
            call()
        assert isinstance(info.value, TypeError)


# ------------------------------------------------------------------------------------------ splits
def _split_file(path: Path, split: dict) -> str:
    path.write_text(json.dumps(split))
    return str(path)


def test_split_whose_test_conditions_are_trained_refused(prepared, tmp_path):
    """Test conditions that are also training conditions used to score NormMSE 0.000 / Pearson 1.0, no warning."""
    data, embeddings = prepared
    perts = data.perturbations
    leaky = _split_file(tmp_path / "leaky.json", {"train": perts, "val": [], "test": perts[-3:]})
    with pytest.raises(InputError, match="is in both train and test"):
        make_split(data, leaky)
    from scouter_local.data.splits import Split

    with pytest.raises(InputError, match="is in both train and val"):
        train(data, embeddings, method="train_mean", split=Split(train=perts, val=perts[:1], test=[]))


@pytest.mark.parametrize(
    "split, message",
    [
        ({"train": "KLF1+ctrl", "val": [], "test": []}, "train must be a list of condition names"),
        ({"train": [1, 2], "val": [], "test": []}, "train must be a list of condition names"),
        (["KLF1+ctrl"], "a split is a JSON object"),
        ({"train": ["KLF1+ctrl", "KLF1+ctrl"], "val": [], "test": []}, "twice in train"),
        ({"train": ["KLF1+ctrl"], "val": [], "test": ["NOPE+ctrl"]}, "test condition 'NOPE\\+ctrl' is not in the data"),
        ({"train": ["KLF1+ctrl"], "val": [], "test": [], "seed": -3}, '"seed"=-3'),
    ],
    ids=["string", "numbers", "list", "twice", "unknown", "seed"],
)
def test_split_json_of_wrong_shape_is_one_error(prepared, tmp_path, split, message):
    """A split JSON with wrong types used to end in a TypeError traceback."""
    data, _ = prepared
    with pytest.raises(InputError, match=message):
        make_split(data, _split_file(tmp_path / "split.json", split))


@pytest.mark.parametrize("kind", ["scouter", "simulation"])
def test_same_seed_same_split_whatever_the_case_of_the_names(kind):
    """The simulation split of one seed used to depend on how the gene names were cased (sorted order of upper vs
    lower case; Scouter's own split never depended on the names)."""

    def respelled(spell):
        adata = screen_adata()
        adata.obs["condition"] = [
            "+".join(g if g == "ctrl" else spell(g) for g in c.split("+")) for c in adata.obs["condition"]
        ]
        return perturbation_data(adata)

    def mixed(g: str) -> str:  # 'Cbl' beside 'CEBPA': plain string order puts them the other way round
        return g[0] + g[1:].lower() if g in ("CBL", "ETS2", "FOXA1") else g

    def same(conditions: list[str]) -> list[str]:
        return sorted("+".join(sorted(g.upper() for g in c.split("+"))) for c in conditions)

    upper = make_split(respelled(str.upper), kind, seed=3)
    other = make_split(respelled(mixed), kind, seed=3)
    for part in ("train", "val", "test"):
        assert same(getattr(other, part)) == same(getattr(upper, part)), part


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "1"])
def test_seed_out_of_range_refused(prepared, seed):
    data, embeddings = prepared
    with pytest.raises(InputError, match="seed="):
        train(data, embeddings, method="train_mean", seed=seed)


# ------------------------------------------------------------------------------------------ damaged files
@pytest.mark.slow  # waits for the structure check's timeout: the integration tier
def test_damaged_hdf5_is_one_line_within_seconds_not_a_hang(tiny, tmp_path):
    """An h5ad with a zeroed global heap used to hang `train` at 100 % CPU forever, inside the HDF5 reader."""
    damaged = zeroed_copy(tiny["screen"], tmp_path / "damaged.h5ad", 2048)
    args = ["train", "--data", damaged, "--db", tiny["db"], "--set", SET, "--out", tmp_path / "m", "--method", "ridge"]
    try:
        proc = subprocess.run([SCOUTER_LOCAL, *map(str, args)], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("train hung on a damaged h5ad (no answer within 60 s)")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(r"error: .*damaged\.h5ad: reading its structure stalled", lines[0]), lines
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("where", ["middle", "global heap"])
def test_damaged_norman_file_is_one_line_within_seconds(where, norman_path, screen_db, tmp_path):
    """The real Norman subset with 20 KB zeroed (in the middle of the file, or its first global heap): `train` used
    to hang at 100 % CPU inside the HDF5 reader; now one line naming the file, and no model folder."""
    start = norman_path.stat().st_size // 2 - 10240 if where == "middle" else None
    damaged = zeroed_copy(norman_path, tmp_path / "norman_zeroed.h5ad", 20480, start=start)
    args = ["train", "--data", damaged, "--db", screen_db, "--set", "minilm", "--out", tmp_path / "m"]
    args += PRESETS["norman"].options.to_cli()
    try:
        proc = subprocess.run([SCOUTER_LOCAL, *map(str, args)], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"train hung on the Norman file zeroed at its {where} (no answer within 60 s)")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {damaged}: "), lines
    assert not (tmp_path / "m").exists()


def test_an_unchanged_file_is_walked_once(tiny, tmp_path, monkeypatch):
    """One command opens a file several times (data, obs columns): the structure walk runs again only when the file
    changed."""
    import shutil

    from scouter_local.data import hdf5

    path = shutil.copyfile(tiny["screen"], tmp_path / "screen.h5ad")
    walks = []
    popen = subprocess.Popen
    monkeypatch.setattr(hdf5.subprocess, "Popen", lambda *a, **k: walks.append(a) or popen(*a, **k))
    hdf5.check_hdf5(path)
    hdf5.check_hdf5(path)
    assert len(walks) == 1
    zeroed_copy(tiny["screen"], path, 2048)  # changed in place: walked again, and refused
    with pytest.raises(InputError, match="stalled|not a readable h5ad file"):
        hdf5.check_hdf5(path, stall_seconds=2)
    assert len(walks) == 2


def test_not_an_hdf5_file_is_one_error(tmp_path):
    path = tmp_path / "text.h5ad"
    path.write_text("not hdf5\n")
    with pytest.raises(InputError, match="not a readable h5ad file"):
        read_perturbation_data(path)
    with pytest.raises(InputError, match="not a file"):
        read_perturbation_data(tmp_path)


def test_every_value_and_spelling_check_spares_the_clean_screen():
    adata = screen_adata()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # our checks warn as UserWarning; a library's deprecations are not theirs
        warnings.simplefilter("ignore", DeprecationWarning)
        data = perturbation_data(adata)
    assert len(data.perturbations) == 16 and data.n_genes == 40
