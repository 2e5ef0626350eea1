"""The effect label: scPerturb's E-test on single cells (a planted shift is found, a condition drawn from control is
not) and a user column above a threshold, with one-line errors for columns that cannot label conditions."""

from __future__ import annotations

import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from gene_corpus.errors import InputError
from scouter_local.data.effect import EffectLabel, effect_label, etest_label, threshold_label
from scouter_local.data.options import DataOptions
from scouter_local.data.read import perturbation_data

OPTIONS = DataOptions(condition_key="condition", control="control", single_format="bare")


def shift_screen(*, shift: float = 0.3, n_cells: int = 50, n_control: int = 400, seed: int = 0) -> ad.AnnData:
    """Log-normalised cells: control, ``NULL`` (cells drawn as control's), ``SHIFT`` (+``shift`` on 20 of 100
    genes) and eight strong conditions that make the Benjamini-Hochberg family."""
    rng = np.random.default_rng(seed)
    rate = rng.uniform(1, 10, 100)

    def cells(n: int, planted: float = 0.0, genes: slice = slice(0, 20)) -> np.ndarray:
        x = np.log1p(rng.poisson(rate, (n, 100)).astype(np.float64))
        x[:, genes] += planted
        return x

    groups = [("control", cells(n_control)), ("NULL", cells(n_cells)), ("SHIFT", cells(n_cells, shift))]
    groups += [(f"G{i}", cells(n_cells, 1.0, slice(5 * i, 5 * i + 5))) for i in range(8)]
    x = np.vstack([g for _, g in groups]).astype(np.float32)
    labels = [name for name, g in groups for _ in range(len(g))]
    return ad.AnnData(x, obs=pd.DataFrame({"condition": labels}, index=[f"c{i}" for i in range(len(x))]))


def test_etest_finds_a_planted_shift_and_not_a_null_condition():
    data = perturbation_data(shift_screen(), OPTIONS)
    label = etest_label(data, runs=500)
    table = label.table
    assert label.rule == "E-test FDR < 0.05" and label.kind == "etest" and label.n == 10
    assert bool(table.loc["SHIFT+ctrl", "label"]) and not bool(table.loc["NULL+ctrl", "label"])
    assert table.loc["SHIFT+ctrl", "p_value"] == pytest.approx(1 / 501)
    assert table.loc["NULL+ctrl", "p_value"] > 0.05
    assert abs(table.loc["NULL+ctrl", "e_distance_unbiased"]) < table.loc["NULL+ctrl", "e_distance"]
    assert (table["statistic"] == table["e_distance"]).all()
    assert np.allclose(table["strength"], np.log(table["signal_to_noise"]))
    assert (table["n_control"] == 400).all() and (table["n_cells"] == 50).all()


def test_etest_is_seeded_and_caps_the_control_cells():
    data = perturbation_data(shift_screen(), OPTIONS)
    a = etest_label(data, runs=200, max_control=100, seed=3)
    b = etest_label(data, runs=200, max_control=100, seed=3)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert (a.table["n_control"] == 100).all() and a.params["max_control"] == 100


def test_etest_statistic_is_the_pairwise_e_distance():
    """scPerturb's E-distance with squared Euclidean distances (a V-statistic) is 2 ||mean_x - mean_y||^2."""
    from sklearn.metrics import pairwise_distances

    from scouter_local.data.effect import _etest_row

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 5)) + 0.2, rng.normal(size=(60, 5))

    def mean_d(a, b):
        return pairwise_distances(a, b, metric="sqeuclidean").mean()

    pairwise = 2 * mean_d(x, y) - mean_d(x, x) - mean_d(y, y)
    assert _etest_row(x, y, 10, rng)["e_distance"] == pytest.approx(pairwise, rel=1e-10)


def delta_screen(values, *, n: int | None = None) -> ad.AnnData:
    """Pseudo-bulk deltas with one numeric ``obs['score']`` per target."""
    values = list(values)
    return ad.AnnData(
        np.random.default_rng(0).normal(size=(len(values), 6)).astype(np.float32),
        obs=pd.DataFrame({"target": [f"T{i}" for i in range(len(values))], "score": values, "word": "x"}),
        uns={"value": "delta_from_control"},
    )


DELTA = DataOptions(condition_key="target", single_format="bare")


def test_threshold_label_reads_the_condition_means():
    adata = delta_screen(np.linspace(0.5, 3, 12))
    data = perturbation_data(adata, DELTA)
    label = threshold_label(data, "score", 1.1, obs=adata.obs)
    assert label.rule == "score > 1.1" and label.kind == "threshold" and label.n == 12
    assert label.labels(["T0+ctrl", "T11+ctrl"]).tolist() == [False, True]
    assert label.strengths(["T11+ctrl"]) == pytest.approx([np.log(3.0)])
    assert label.row("T11+ctrl") == {"effect": True, "effect_statistic": 3.0}
    assert label.row("NOPE+ctrl") == {"effect": None, "effect_statistic": None}
    again = EffectLabel.from_json(label.to_json())
    pd.testing.assert_frame_equal(again.table, label.table)
    assert (again.rule, again.kind, again.params) == (label.rule, label.kind, label.params)


def test_threshold_label_of_a_file(tmp_path):
    path = tmp_path / "d.h5ad"
    delta_screen(np.linspace(-1, 3, 12)).write_h5ad(path)
    from scouter_local.data.read import read_perturbation_data

    label = effect_label(read_perturbation_data(path, DELTA), strong_key="score", strong_above=0.0)
    assert label.positives == 9
    assert np.allclose(label.table["strength"], label.table["statistic"])  # not all positive: the values themselves


@pytest.mark.parametrize(
    ("values", "key", "above", "message"),
    [
        (np.linspace(0, 3, 12), "nope", 1.0, "strong_key='nope' not in obs"),
        (np.linspace(0, 3, 12), "word", 1.0, "obs['word'] is not numeric"),
        ([2.0] * 12, "score", 1.0, "obs['score'] is constant"),
        (np.linspace(0, 3, 12), "score", 5.0, "strong_above=5 leaves no condition above it"),
        (np.linspace(0, 3, 12), "score", -1.0, "strong_above=-1 leaves no condition at or below it"),
        (np.linspace(0, 3, 9), "score", 1.0, "only 9 condition(s) have a value of obs['score']"),
    ],
)
def test_bad_label_columns_are_one_line_errors(values, key, above, message):
    adata = delta_screen(values)
    with pytest.raises(InputError, match=re.escape(message)) as info:
        threshold_label(perturbation_data(adata, DELTA), key, above, obs=adata.obs)
    assert "\n" not in str(info.value)


def test_effect_label_picks_its_source():
    adata = delta_screen(np.linspace(0, 3, 12))
    data = perturbation_data(adata, DELTA)
    assert effect_label(data) is None  # pseudo-bulk without a column
    assert effect_label(data, strong_key="score", strong_above=1.0, obs=adata.obs).kind == "threshold"
    with pytest.raises(InputError, match="`strong_key` and `strong_above` go together"):
        effect_label(data, strong_key="score")
    with pytest.raises(InputError, match="the E-test needs single cells"):
        etest_label(data)
    with pytest.raises(InputError, match="pass obs=ADATA.obs"):
        threshold_label(data, "score", 1.0)
    cells = perturbation_data(shift_screen(), OPTIONS)
    assert effect_label(cells, runs=50).kind == "etest"


def test_etest_reads_backed_cells_in_chunks(tmp_path, monkeypatch):
    """The same label from a file read backed, in chunks of a few rows (the PCA sample and every projection)."""
    from scouter_local.data import cells
    from scouter_local.data.read import read_perturbation_data

    path = tmp_path / "cells.h5ad"
    shift_screen().write_h5ad(path)
    in_memory = etest_label(read_perturbation_data(path, OPTIONS, backed=False), runs=100)
    monkeypatch.setattr(cells, "CHUNK_VALUES", 64 * 100)
    backed = read_perturbation_data(path, OPTIONS, backed=True)
    assert backed.cells.backed and backed.cells.chunk_rows() == 64
    pd.testing.assert_frame_equal(etest_label(backed, runs=100).table, in_memory.table, rtol=1e-5)


def test_well_studied_table_reads_documents_and_go_counts(tiny_db):
    from scouter_local.data.well_studied import well_studied_table

    table = well_studied_table(tiny_db, [901, 907, 909, 901, -1])
    assert list(table.columns) == ["entrez_id", "doc_chars", "n_go", "kind"]
    assert table["entrez_id"].tolist() == [901, 907, 909, 901, -1]
    assert table["kind"].tolist()[2:] == ["none", table["kind"][0], "none"]
    assert table.loc[0, "doc_chars"] > 40 and table.loc[2, "doc_chars"] == 0 and (table["n_go"] == 0).all()
    assert table.loc[1, "kind"] != table.loc[0, "kind"]  # a custom text against a RefSeq summary
