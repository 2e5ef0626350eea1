"""Fixtures of the benchmark tests on the real Replogle file (the synthetic screen is ``tests._synthetic``'s)."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import pytest

from scouter_local.datasets import PRESETS

KEY, ABOVE = "signal_to_noise", 1.1


@pytest.fixture(scope="session")
def replogle_subset(data_dir, tmp_path_factory) -> Path:
    """The real file cut to its 40 strongest targets and every 12th other one (file order kept): ~120 targets."""
    a = ad.read_h5ad(PRESETS["replogle"].path(data_dir))
    order = a.obs[KEY].sort_values(ascending=False).index
    keep = a.obs_names.isin(list(order[:40]) + list(order[40::12]))
    path = tmp_path_factory.mktemp("replogle") / "replogle_subset.h5ad"
    a[keep].copy().write_h5ad(path)
    return path
