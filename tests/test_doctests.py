"""The ``>>>`` examples of the public modules run on the real data (names the examples use come from fixtures)."""

from __future__ import annotations

import doctest
import importlib
import warnings

import pytest

MODULES = (
    "scouter_local.conditions",
    "scouter_local.runtime",
    "scouter_local.predictors",
    "scouter_local.data.options",
    "scouter_local.data.read",
    "scouter_local.predictors.training",
    "scouter_local.predictors.prediction",
    "scouter_local.evaluation.scoring",
    "scouter_local.evaluation.detection",
)


@pytest.fixture(scope="module")
def namespace(norman, embeddings, screen_db) -> dict:
    from scouter_local.datasets import PRESETS, find_data_dir
    from scouter_local.predictors.training import train

    return {
        "PRESETS": PRESETS,
        "find_data_dir": find_data_dir,
        "data": norman,
        "embeddings": embeddings,
        "db": screen_db,
        "model": train(norman, embeddings, method="gene_delta", seed=1),
    }


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name, namespace):
    module = importlib.import_module(name)
    finder, runner = (
        doctest.DocTestFinder(),
        doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE),
    )
    tests = [t for t in finder.find(module, globs={**vars(module), **namespace}) if t.examples]
    assert tests, f"{name} has no >>> example"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for test in tests:
            runner.run(test)
    assert runner.failures == 0, f"{runner.failures} example(s) of {name} failed (see the output above)"
