"""``benchmarks.evidence``: its two evidence models differ only in the ridge's centring, and both find the signal of
an informative embedding (the synthetic screen of ``tests/_synthetic.py``). The real measurement is
``python -m benchmarks.evidence`` on the Replogle file."""

from __future__ import annotations

import numpy as np

from benchmarks.evidence import _offsets, fit_evidence
from tests.benchmarking.conftest import ABOVE, KEY


def test_centred_ridge_adds_nothing_for_an_average_embedding():
    rng = np.random.default_rng(0)
    x, deltas = rng.normal(size=(60, 8)), rng.normal(1.0, 1.0, (60, 5))
    reliability = rng.uniform(0, 1, 60)
    average = (reliability + 1e-3) @ x / (reliability + 1e-3).sum()
    for centred, zero in ((True, True), (False, False)):
        ridge = _offsets(x, deltas, reliability, average[None], [10], centred=centred)[10, 0.1, 1.0, 1.0]
        assert np.allclose(ridge, 0.0) is zero


def test_both_models_use_an_informative_embedding(screen):
    data, informative, shuffled, split, truth = screen
    prior = np.mean([data.condition_mean(c) for c in split.train], axis=0)
    for method in ("evidence_shifted", "evidence_centred"):
        predictions, _, train = fit_evidence(data, informative, split, method, {"seed": 1})
        assert train == split.train and set(predictions) == set(split.test)
        gain = [np.corrcoef(predictions[c], truth[c])[0, 1] - np.corrcoef(prior, truth[c])[0, 1] for c in split.test]
        assert np.mean(gain) > 0.1
        on_shuffled, _, _ = fit_evidence(data, shuffled, split, method, {"seed": 1})
        assert np.allclose(np.stack(list(on_shuffled.values())), prior, atol=1e-6)


def test_runners_outside_the_registry_get_shuffled_controls(replogle_subset, screen_db, tmp_path):
    import warnings

    from benchmarks.evidence import RUNNER
    from scouter_local.benchmarking.benchmark import run_benchmark
    from scouter_local.data.options import DataOptions
    from scouter_local.evaluation.strong import StrongTargets

    options = DataOptions(condition_key="target_ensembl", single_format="bare", noise_key=KEY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bench = run_benchmark(
            replogle_subset,
            options,
            db=screen_db,
            set_names=["minilm"],
            methods=["train_mean", "evidence_centred"],
            seeds=[1],
            out=tmp_path,
            runners={"evidence_centred": RUNNER},
            strong=StrongTargets(KEY, ABOVE, {}),
            shuffles=2,
        )
    result = bench.get("minilm", "evidence_centred")
    assert len(result.shuffled) == 2 and set(result.signal) == {"overall", "strong"}
    assert not bench.get("minilm", "train_mean").shuffled
    assert "evidence_centred" in bench.table.split("real vs shuffled")[1]
