"""The noise ceiling against its analytic value on a synthetic screen with known noise, and the paired signal test."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scouter_local.data.options import DataOptions
from scouter_local.data.read import perturbation_data
from scouter_local.evaluation.ceiling import noise_ceiling
from scouter_local.evaluation.metrics import METRICS, condition_metrics
from scouter_local.evaluation.results import Evaluation
from scouter_local.evaluation.signal import signal_test
from scouter_local.evaluation.strong import StrongTargets

N_GENES, N_CONDITIONS, N_CELLS, N_CONTROL, SIGMA = 300, 40, 30, 600, 1.0


@pytest.fixture(scope="module")
def screen():
    """Cells = control mean + true change + Gaussian noise of known sd; returns the data and the true means."""
    rng = np.random.default_rng(0)
    base = rng.uniform(2, 4, N_GENES)
    truth = {}
    blocks, labels = [base + rng.normal(0, SIGMA, (N_CONTROL, N_GENES))], ["control"] * N_CONTROL
    for i in range(N_CONDITIONS):
        change = np.where(rng.random(N_GENES) < 0.15, rng.normal(0, 0.8, N_GENES), 0.0)
        truth[f"G{i}+ctrl"] = base + change
        blocks.append(base + change + rng.normal(0, SIGMA, (N_CELLS, N_GENES)))
        labels += [f"G{i}"] * N_CELLS
    adata = ad.AnnData(np.vstack(blocks).astype(np.float32), obs=pd.DataFrame({"condition": labels}))
    adata.var_names = [f"g{j}" for j in range(N_GENES)]
    data = perturbation_data(adata, DataOptions(control="control", single_format="bare"))
    return data, truth


def test_ceiling_matches_its_analytic_value_and_a_perfect_predictor(screen):
    """The ceiling, computed from the cells' variances and counts only, against (1) its analytic value from the
    known noise (sigma^2 / n per gene) and (2) what a predictor that knows every true mean scores."""
    data, truth = screen
    conditions = list(truth)
    ceiling = noise_ceiling(data, conditions, [], strong=StrongTargets("x", 0.5, {c: 1.0 for c in conditions}))
    control = data.control_mean()
    se2 = SIGMA**2 / N_CELLS
    observed = {c: data.condition_mean(c) - control for c in conditions}
    analytic = pd.DataFrame(
        {
            "normmse": [se2 / np.mean(observed[c][data.de_genes[c]] ** 2) for c in conditions],
            "pearson_delta_all": [np.sqrt(1 - se2 / np.var(observed[c])) for c in conditions],
        }
    )
    perfect = pd.DataFrame(
        [condition_metrics(data.condition_mean(c), truth[c], control, data.de_genes[c]) for c in conditions]
    )
    got = ceiling.conditions
    assert got["normmse"].mean() == pytest.approx(analytic["normmse"].mean(), rel=0.1)
    assert got["pearson_delta_all"].mean() == pytest.approx(analytic["pearson_delta_all"].mean(), rel=0.01)
    assert got["pearson_delta_all"].mean() == pytest.approx(perfect["pearson_delta_all"].mean(), rel=0.02)
    assert got["pearson_delta_top20"].mean() == pytest.approx(perfect["pearson_delta_top20"].mean(), rel=0.02)
    assert got["direction_top20"].mean() == pytest.approx(perfect["direction_top20"].mean(), abs=0.02)
    # the top-20 genes are chosen on the same noisy means: a perfect predictor's realised error there is a little
    # above the expected noise (selection on noise); the ceiling is the noise floor, not a promise
    assert analytic["normmse"].mean() < perfect["normmse"].mean() < 2 * analytic["normmse"].mean()
    assert ceiling.summary.at["strong", "n"] == N_CONDITIONS  # groups follow the rows' flags


def test_centred_ceiling_matches_a_perfect_predictor():
    """The centred Pearson's ceiling (the training conditions' mean profile as reference) against what a predictor
    that knows every true mean scores, on cells whose conditions share one response (as real screens' do, so the
    reference is not the control); undefined without training conditions."""
    rng = np.random.default_rng(2)
    base = rng.uniform(2, 4, N_GENES)
    shared = rng.normal(0, 1.0, N_GENES)
    truth, blocks, labels = {}, [base + rng.normal(0, SIGMA, (N_CONTROL, N_GENES))], ["control"] * N_CONTROL
    for i in range(N_CONDITIONS):
        truth[f"G{i}+ctrl"] = base + shared + np.where(rng.random(N_GENES) < 0.15, rng.normal(0, 0.4, N_GENES), 0.0)
        blocks.append(truth[f"G{i}+ctrl"] + rng.normal(0, SIGMA, (N_CELLS, N_GENES)))
        labels += [f"G{i}"] * N_CELLS
    adata = ad.AnnData(np.vstack(blocks).astype(np.float32), obs=pd.DataFrame({"condition": labels}))
    adata.var_names = [f"g{j}" for j in range(N_GENES)]
    data = perturbation_data(adata, DataOptions(control="control", single_format="bare"))
    train, test = list(truth)[:20], list(truth)[20:]
    reference = data.subset(train).mean_profile()
    control = data.control_mean()
    perfect = [
        condition_metrics(data.condition_mean(c), truth[c], control, data.de_genes[c], train_mean_profile=reference)
        for c in test
    ]
    got = noise_ceiling(data, test, train).conditions["pearson_centred_top20"].mean()
    # a little above the perfect predictor (genes chosen on noisy means; the reference is itself an estimate), far
    # below Pearson Δ's ceiling, which the shared response lifts to ~1
    expected = np.mean([m["pearson_centred_top20"] for m in perfect])
    assert expected < got < expected + 0.08 and got < 0.9
    assert noise_ceiling(data, test, []).conditions["pearson_centred_top20"].isna().all()


def test_ceiling_of_pseudo_bulk_needs_a_noise_column(screen):
    data, truth = screen
    deltas = ad.AnnData(
        np.stack([truth[c] - data.control_mean() for c in truth]).astype(np.float32),
        obs=pd.DataFrame({"target": [c.split("+")[0] for c in truth]}),
        uns={"value": "delta_from_control"},
    )
    delta_data = perturbation_data(deltas, DataOptions(condition_key="target", single_format="bare"))
    assert noise_ceiling(delta_data, delta_data.perturbations, []) is None
    snr = {c: 4.0 for c in delta_data.perturbations}
    ceiling = noise_ceiling(delta_data, delta_data.perturbations, [], noise=snr)
    assert ceiling.conditions["pearson_delta_all"].to_numpy() == pytest.approx(np.sqrt(1 - 1 / 4))
    assert ceiling.conditions["normmse"].isna().all()


def _evaluation(values: np.ndarray, metric: str = "pearson_delta_top20") -> Evaluation:
    rows = [
        {"condition": f"C{i}+ctrl", "subgroup": "single", **{m: 0.0 for m in METRICS}, metric: v}
        for i, v in enumerate(values)
    ]
    return Evaluation.from_rows(rows, method="m")


def test_signal_test_pairs_conditions():
    rng = np.random.default_rng(1)
    shuffled = [_evaluation(rng.normal(0.3, 0.2, 60)) for _ in range(5)]
    control = np.mean([s.conditions["pearson_delta_top20"] for s in shuffled], axis=0)
    better = signal_test(_evaluation(control + 0.05), shuffled, metric="pearson_delta_top20")
    assert better["verdict"] == "signal" and better["p_value"] < 0.001 and better["delta"] == pytest.approx(0.05)
    same = signal_test(_evaluation(control + rng.normal(0, 0.1, 60)), shuffled, metric="pearson_delta_top20")
    assert same["p_value"] > 0.05 or same["delta"] <= 0
    worse = signal_test(_evaluation(control - 0.05), shuffled, metric="pearson_delta_top20")
    assert worse["verdict"] == "no evidence" and worse["p_value"] > 0.99
    # NormMSE: lower is better, so a lower real error is a positive delta
    errors = [_evaluation(np.full(60, 1.0), "normmse")]
    assert signal_test(_evaluation(np.full(60, 0.8), "normmse"), errors, metric="normmse")["delta"] == pytest.approx(
        0.2
    )
