"""Reading screens on the synthetic screen of ``tests/_synthetic.py``: conditions, statistics, DE genes, deltas."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gene_corpus.errors import InputError
from scouter_local.conditions import CTRL
from scouter_local.data.options import DataOptions
from scouter_local.data.read import perturbation_data, read_perturbation_data
from tests._synthetic import CELL_OPTIONS, delta_file

DELTAS = DataOptions(condition_key="target_symbol", single_format="bare", noise_key="signal_to_noise")


@pytest.fixture(scope="module")
def data(cells):
    return perturbation_data(cells[0], CELL_OPTIONS)


def test_conditions_are_spelled_and_subset(data, cells):
    adata, planted = cells
    assert sorted(data.perturbations) == sorted(
        ["SYN1+ctrl", "SYN2+ctrl", "OLD3+ctrl", "SYN4+ctrl", "SYN5+ctrl", "SYN6+ctrl"]
        + ["SYN1+SYN2", "SYN4+SYN5", "OLD3+SYN2", "SYN7+SYN8"]
    )  # genes as written (resolution comes later), pairs sorted, the other screen's SYN9 left out
    assert (data.conditions == CTRL).sum() == 150 and data.n_obs == (adata.obs["dataset"] == "main").sum()
    assert data.genes == list(adata.var_names) and not data.is_delta


def test_means_are_the_cells_means(data, cells):
    adata = cells[0]
    x = adata.X.toarray()
    for label, condition in (("control", CTRL), ("SYN1+SYN2", "SYN1+SYN2"), ("OLD3", "OLD3+ctrl")):
        rows = ((adata.obs["condition"] == label) & (adata.obs["dataset"] == "main")).to_numpy()
        np.testing.assert_allclose(data.condition_mean(condition), x[rows].mean(0), rtol=1e-5, atol=1e-6)


def test_de_genes_lead_with_the_planted_genes(data, cells):
    for condition, hit in cells[1].items():
        as_written = "+".join(sorted(g.replace("SYN3", "OLD3") for g in condition.split("+")))  # before resolution
        top = [data.genes[i] for i in data.de_genes[as_written]]
        assert len(top) == 20 and set(top[: len(hit)]) == set(hit), condition


def test_backed_file_reads_like_memory(cells, tmp_path):
    path = tmp_path / "screen.h5ad"
    cells[0].write_h5ad(path)
    whole = read_perturbation_data(path, CELL_OPTIONS, backed=False)
    backed = read_perturbation_data(path, CELL_OPTIONS, backed=True)
    assert backed.cells.backed and not whole.cells.backed
    assert backed.perturbations == whole.perturbations and whole.source["path"] == str(path.resolve())
    for c in [CTRL, *whole.perturbations]:
        np.testing.assert_allclose(backed.condition_mean(c), whole.condition_mean(c), rtol=1e-6)
        assert np.array_equal(backed.de_genes.get(c, []), whole.de_genes.get(c, []))


def test_pseudo_bulk_deltas(cells):
    deltas = delta_file(cells[0])
    data = perturbation_data(deltas, DELTAS)
    assert data.is_delta and not (data.conditions == CTRL).any() and not data.control_mean().any()
    np.testing.assert_array_equal(data.condition_mean("SYN2+ctrl"), deltas.X[1])
    top = data.de_genes["SYN2+ctrl"]
    magnitude = np.abs(deltas.X[1])
    assert magnitude[top].min() >= np.sort(magnitude)[-20]  # the 20 largest changes
    assert set(cells[1]["SYN2+ctrl"]) <= {data.genes[i] for i in top[:3]}
    snr = deltas.obs["signal_to_noise"]
    assert data.noise == pytest.approx({f"{t}+ctrl": v for t, v in zip(deltas.obs["target_symbol"], snr)})


def test_bad_options_are_one_line_errors(cells):
    adata = cells[0]
    with pytest.raises(InputError, match="'cond' not in obs"):
        perturbation_data(adata, replace(CELL_OPTIONS, condition_key="cond"))
    with pytest.raises(InputError, match="no control cells with value 'ctrl'; this file has 'control'"):
        perturbation_data(adata, replace(CELL_OPTIONS, control="ctrl"))
    with pytest.raises(InputError, match="single_format='bare'"):
        perturbation_data(adata, replace(CELL_OPTIONS, single_format="gears"))
    with pytest.raises(InputError, match="deltas need no control"):
        perturbation_data(adata, replace(CELL_OPTIONS, delta=True))


def test_small_conditions_fail_or_are_left_out(cells):
    adata = cells[0]
    label = adata.obs["condition"].to_numpy()
    one = adata[np.r_[np.flatnonzero(label != "SYN6"), np.flatnonzero(label == "SYN6")[:1]]]
    with pytest.raises(InputError, match="condition 'SYN6\\+ctrl' has 1 cell"):
        perturbation_data(one, CELL_OPTIONS)
    data = perturbation_data(one, replace(CELL_OPTIONS, min_cells=2))
    assert "SYN6+ctrl" not in data.perturbations and data.excluded == {
        "SYN6+ctrl": "only 1 cell(s), fewer than min_cells=2"
    }
