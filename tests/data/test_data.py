"""Reading the real screens, DE genes, gene resolution, splits and subgroups."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import anndata as ad
import numpy as np
import pytest

from gene_corpus.errors import InputError
from scouter_local.conditions import CTRL, genes_of, spell_condition
from scouter_local.data.link import prepare_data, resolve_genes
from scouter_local.data.options import DataOptions
from scouter_local.data.read import perturbation_data, read_perturbation_data
from scouter_local.data.splits import make_split, scouter_split, simulation_split, subgroup
from scouter_local.embedding.sets import EmbeddingSet
from tests._realdata import subset_h5ad


def test_norman_conditions_spelled_gears_way(norman):
    perts = norman.perturbations
    assert len(perts) == 33  # 18 singles + 15 doubles of norman19
    assert sum(c.endswith("+ctrl") for c in perts) == 18
    assert "KLF1+SET" in perts and "SET+KLF1" not in perts  # combination genes sorted
    assert (norman.conditions == CTRL).sum() == 100
    assert (norman.n_obs, norman.n_genes) == (3375, 500)
    assert set(norman.gene_rows) == {g for c in perts for g in c.split("+") if g != CTRL}


def test_de_genes_top20_non_dropout_without_perturbed_genes(norman):
    ctrl = norman.control_mean()
    for cond in norman.perturbations:
        top = norman.de_genes[cond]
        assert 18 <= len(top) <= 20 and len(set(top)) == len(top)
        genes = set(cond.split("+"))
        assert not genes & {norman.genes[i] for i in top}
        mean = norman.condition_mean(cond)
        assert np.all((mean[top] != 0) | (ctrl[top] == 0))  # non-dropout


@pytest.mark.filterwarnings("ignore::pandas.errors.PerformanceWarning")
def test_de_genes_match_scanpy_ranking(norman_path, norman_options):
    """DE genes from the one-pass statistics are scanpy's t-test ranking (non-dropouts, perturbed genes out)."""
    import scanpy as sc

    data = read_perturbation_data(norman_path, norman_options)
    a = ad.AnnData(X=data.expression(), obs={"g": data.conditions.astype(str)})
    a.var_names = [str(i) for i in range(data.n_genes)]
    sc.tl.rank_genes_groups(a, "g", reference=CTRL, method="t-test", rankby_abs=True, n_genes=data.n_genes)
    ctrl_zero = data.control_mean() == 0
    for cond in data.perturbations:
        ranked = np.array([int(i) for i in a.uns["rank_genes_groups"]["names"][cond]])
        ranked = ranked[(data.condition_mean(cond)[ranked] != 0) | ctrl_zero[ranked]][:20]
        perturbed = [data.genes.index(g) for g in cond.split("+") if g in data.genes]
        assert list(data.de_genes[cond]) == [i for i in ranked if i not in perturbed], cond


def test_backed_reading_matches_in_memory(norman_path, norman_options, monkeypatch):
    """A file read backed in small chunks gives the same statistics, DE genes and rows as in memory."""
    from scouter_local.data import cells

    whole = read_perturbation_data(norman_path, norman_options, backed=False)
    monkeypatch.setattr(cells, "CHUNK_VALUES", 500 * 97)  # 97-row chunks: many chunk boundaries
    backed = read_perturbation_data(norman_path, norman_options, backed=True)
    assert backed.cells.backed and not whole.cells.backed
    assert backed.perturbations == whole.perturbations
    for cond in [CTRL, *whole.perturbations]:
        np.testing.assert_allclose(backed.condition_mean(cond), whole.condition_mean(cond), rtol=1e-6, atol=1e-6)
        assert np.array_equal(backed.de_genes.get(cond, []), whole.de_genes.get(cond, []))
    rows = np.arange(0, whole.n_obs, 7)
    assert np.array_equal(backed.expression(rows), whole.expression(rows))


def test_in_memory_anndata_reads_like_the_file(norman_path, norman_options):
    """An AnnData filtered in memory is read as is: no h5ad is written, the statistics equal the file's."""
    adata = ad.read_h5ad(norman_path)
    adata = adata[adata.obs["condition"] != "KLF1"]  # a view, as a scanpy user filters cells
    data = perturbation_data(adata, norman_options)
    whole = read_perturbation_data(norman_path, norman_options)
    assert data.source["path"] is None and "KLF1+ctrl" not in data.perturbations
    assert data.perturbations == [c for c in whole.perturbations if c != "KLF1+ctrl"]
    for cond in (CTRL, "MAP2K6+ctrl", "KLF1+MAP2K6"):
        np.testing.assert_allclose(data.condition_mean(cond), whole.condition_mean(cond), rtol=1e-6)
        assert np.array_equal(data.de_genes.get(cond, []), whole.de_genes.get(cond, []))


def test_bare_singles_need_explicit_option(norman_path):
    with pytest.raises(InputError, match="single_format='bare'"):
        read_perturbation_data(norman_path, DataOptions(control="control", subset=(("dataset", "norman19"),)))


def test_condition_spellings():
    bare = {"control": "non-targeting", "single_format": "bare", "where": "obs['target']"}
    assert spell_condition("non-targeting", **bare) == CTRL
    assert spell_condition("STAT1", **bare) == "STAT1+ctrl"
    assert spell_condition("SET+KLF1", **bare) == "KLF1+SET"
    assert spell_condition("KLF1+ctrl", control="ctrl", single_format="gears", where="x") == "KLF1+ctrl"
    with pytest.raises(InputError, match="'KLF1' in obs\\['c'\\] is a bare gene"):
        spell_condition("KLF1", control="ctrl", single_format="gears", where="obs['c']")


def test_wrong_keys_are_one_line_errors(norman_path):
    with pytest.raises(InputError, match="'cond' not in obs"):
        read_perturbation_data(norman_path, DataOptions(condition_key="cond"))
    with pytest.raises(InputError, match="`subset` key 'batch' not in obs"):
        read_perturbation_data(norman_path, DataOptions(subset=(("batch", "x"),)))
    for single_format in ("bare", "gears"):  # the file's control label is 'control': say so before anything else
        with pytest.raises(
            InputError, match="no control cells with value 'ctrl'; this file has 'control': pass control='control'"
        ):
            read_perturbation_data(norman_path, DataOptions(single_format=single_format))


def test_h5ad_without_control_cells(norman_path, tmp_path):
    obs = ad.read_h5ad(norman_path, backed="r").obs
    path = subset_h5ad(
        norman_path,
        tmp_path / "noctrl.h5ad",
        ((obs["dataset"] == "norman19") & (obs["condition"] != "control")).to_numpy(),
    )
    with pytest.raises(InputError, match="no control cells"):
        read_perturbation_data(path, DataOptions(control="control", single_format="bare"))


def test_condition_with_one_cell(norman_path, tmp_path):
    obs = ad.read_h5ad(norman_path, backed="r").obs
    rows = np.flatnonzero(((obs["dataset"] == "norman19") & obs["condition"].isin(["control", "MAPK1"])).to_numpy())
    one = np.flatnonzero((obs["condition"] == "KLF1").to_numpy())[:1]
    path = subset_h5ad(norman_path, tmp_path / "one.h5ad", np.concatenate([rows, one]))
    opts = DataOptions(control="control", single_format="bare")
    with pytest.raises(InputError, match="condition 'KLF1\\+ctrl' has 1 cell"):
        read_perturbation_data(path, opts)
    data = read_perturbation_data(path, replace(opts, min_cells=2))
    assert data.perturbations == ["MAPK1+ctrl"] and "KLF1+ctrl" in data.excluded


def test_gene_without_embedding_left_out_visibly(norman_path, norman_options, screen_db, embeddings):
    from gene_corpus.corpus import Corpus

    drop = embeddings.symbols.index("IER5L")
    keep = np.arange(len(embeddings.symbols)) != drop
    smaller = EmbeddingSet(
        name="minilm-no-ier5l",
        fingerprint="x",
        symbols=[s for s, k in zip(embeddings.symbols, keep) if k],
        entrez_ids=embeddings.entrez_ids[keep],
        vectors=embeddings.vectors[keep],
    )
    data = read_perturbation_data(norman_path, norman_options)
    with Corpus.open(screen_db, read_only=True) as corpus, pytest.warns(UserWarning, match="IER5L"):
        resolved = resolve_genes(data, smaller, corpus.resolve)
    assert resolved.excluded["IER5L+ctrl"] == "gene IER5L has no embedding in set 'minilm-no-ier5l'"
    assert "IER5L+ctrl" not in resolved.perturbations and len(resolved.perturbations) == 32


def test_papalexi_raw_counts_normalised(data_dir, screen_db, embeddings):
    opts = DataOptions(
        condition_key="target",
        control="non-targeting",
        single_format="bare",
        normalize=True,
        subset=(("bio_rep", "rep_1"),),
    )
    path = data_dir / "perturbseq" / "papalexi2021_thp1_subset.h5ad"
    data = read_perturbation_data(path, opts)
    assert (data.conditions == CTRL).any() and "STAT1+ctrl" in data.perturbations
    counts = np.expm1(data.expression(np.arange(50))).sum(axis=1)
    assert np.allclose(counts, counts[0], rtol=1e-3)  # library-size normalised, then log1p
    with pytest.warns(UserWarning, match="raw counts"):
        read_perturbation_data(path, replace(opts, normalize=False))


def test_replogle_deltas_resolved_from_ensembl(replogle_files, screen_db, embeddings):
    opts = DataOptions(condition_key="target_ensembl", single_format="bare")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = prepare_data(replogle_files[0], opts, screen_db, embeddings)
    assert data.is_delta and not (data.conditions == CTRL).any()
    assert np.all(data.control_mean() == 0)
    assert all(not c.startswith("ENSG") for c in data.perturbations)  # respelled with current symbols
    c = data.perturbations[0]
    top = data.de_genes[c]
    obs = np.abs(data.condition_mean(c))
    assert obs[top].min() >= np.sort(obs)[-20] - 1e-7  # largest |delta|


def test_scouter_split_sizes_and_seeds(norman):
    splits = [make_split(norman, "scouter", seed=s) for s in (1, 2)]
    for sp in splits:
        assert (len(sp.train), len(sp.val), len(sp.test)) == (23, 3, 7)
        assert set(sp.train) | set(sp.val) | set(sp.test) == set(norman.perturbations)
        assert not set(sp.train) & set(sp.test) and not set(sp.val) & set(sp.test)
    assert splits[0].test != splits[1].test
    assert make_split(norman, "scouter", seed=1) == splits[0]


def test_scouter_split_reproduces_scouter_procedure():
    """Scouter shuffles with np.random.seed(seed) and takes the first round(ratio * n) conditions."""
    conds = [f"G{i}+ctrl" for i in range(33)]
    np.random.seed(5)
    expect = list(conds)
    np.random.shuffle(expect)
    assert scouter_split(conds, seed=5).test == expect[:7]


def _synthetic_screen(rng: np.random.Generator) -> list[str]:
    """A random screen: 8-30 genes, a random share of them with a single, random pairs (some without singles)."""
    genes = [f"G{i}" for i in range(int(rng.integers(8, 31)))]
    singles = [f"{g}+ctrl" for g in genes if rng.random() < 0.8]
    pairs = {"+".join(sorted(rng.choice(genes, 2, replace=False))) for _ in range(int(rng.integers(3, 40)))}
    return list(rng.permutation(singles + sorted(pairs)))


def _check_simulation_part(train: list[str], out: list[str], frac: float) -> None:
    """GEARS's simulation rule for one level, checked from the outside: a random ``int(frac * n_genes)`` genes are
    training genes; their singles train and the singles of the others are held out; combinations with a held-out
    gene are held out, and ``int(frac * n)`` of the ``n`` combinations of two training genes train."""
    genes = genes_of_all(train + out)
    singles = [c for c in train + out if len(genes_of(c)) == 1]
    unseen = {genes_of(c)[0] for c in out if len(genes_of(c)) == 1}
    trained = {genes_of(c)[0] for c in train if len(genes_of(c)) == 1}
    assert not unseen & set(genes_of_all(train))  # a held-out single's gene appears in no training condition
    n_train_genes = int(frac * len(genes))
    assert len(trained) <= n_train_genes and len(unseen) >= len(singles) - n_train_genes
    combos_train = [c for c in train if len(genes_of(c)) == 2]
    possible = [c for c in train + out if len(genes_of(c)) == 2 and not set(genes_of(c)) & unseen]
    certain = [c for c in train + out if len(genes_of(c)) == 2 and set(genes_of(c)) <= trained]
    assert int(frac * len(certain)) <= len(combos_train) <= int(frac * len(possible))


def genes_of_all(conditions: list[str]) -> list[str]:
    return sorted({g for c in conditions for g in genes_of(c)})


@pytest.mark.parametrize("seed", range(12))
def test_simulation_split_follows_gears_definition(seed):
    conds = _synthetic_screen(np.random.default_rng(seed))
    sp = simulation_split(conds, seed=seed)
    assert sorted(sp.train + sp.val + sp.test) == sorted(conds) and len(set(conds)) == len(conds)  # a partition
    _check_simulation_part(sp.train + sp.val, sp.test, 0.75)
    _check_simulation_part(sp.train, sp.val, 0.9)
    assert all(subgroup(c, sp.train + sp.val) == "single" for c in sp.test if len(genes_of(c)) == 1)
    assert simulation_split(list(conds), seed=seed) == sp


def test_simulation_split_of_norman(norman):
    sp = make_split(norman, "simulation", seed=1)
    assert sorted(sp.train + sp.val + sp.test) == sorted(norman.perturbations)
    _check_simulation_part(sp.train + sp.val, sp.test, 0.75)
    assert any(len(genes_of(c)) == 1 for c in sp.test)  # some unseen singles to score


def test_split_file_and_errors(norman, tmp_path):
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": ["KLF1+ctrl", "MAP2K6+ctrl"], "val": [], "test": ["KLF1+MAP2K6"]}))
    sp = make_split(norman, str(path))
    assert sp.test == ["KLF1+MAP2K6"] and sp.kind == "file"
    path.write_text(json.dumps({"train": ["NOPE+ctrl"], "val": [], "test": []}))
    with pytest.raises(InputError, match="'NOPE\\+ctrl' is not in the data"):
        make_split(norman, str(path))
    with pytest.raises(InputError, match="split='random'"):
        make_split(norman, "random")


def test_subgroup_labels(norman):
    train = ["KLF1+ctrl", "MAP2K6+ctrl", "CBL+CNN1"]
    assert subgroup("TGFBR2+ctrl", train) == "single"
    assert subgroup("CNN1+ctrl", train) == "single_seen"
    assert subgroup("BPGM+SAMD1", train) == "combo_seen0"
    assert subgroup("KLF1+TGFBR2", train) == "combo_seen1"
    assert subgroup("KLF1+MAP2K6", train) == "combo_seen2"
    assert all(c in norman.perturbations for c in ["TGFBR2+ctrl", "CNN1+MAPK1", "BPGM+SAMD1", "KLF1+TGFBR2"])
