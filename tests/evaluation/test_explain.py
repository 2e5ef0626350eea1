"""Explanation of predictions: nearest trained perturbations and genes, with cosines."""

from __future__ import annotations

import numpy as np
import pytest

from gene_corpus.errors import InputError
from scouter_local.data.splits import make_split
from scouter_local.evaluation.explain import explain, explain_predictor, format_explanations
from scouter_local.predictors.training import train


@pytest.fixture(scope="module")
def explained(norman, embeddings):
    """The MiniLM set, the Norman screen and its split of seed 1."""
    return embeddings, norman, make_split(norman, "scouter", seed=1)


def _unit(v):
    return v / np.linalg.norm(v)


def test_nearest_are_trained_with_exact_cosines(explained):
    emb, data, split = explained
    out = explain(split.test, emb, split.train, data.gene_rows, k=3)
    assert [e.condition for e in out] == split.test
    train_genes = {g for c in split.train for g in c.split("+") if g != "ctrl"}
    for e in out:
        assert not e.trained and len(e.nearest) == 3
        cosines = [n.cosine for n in e.nearest]
        assert cosines == sorted(cosines, reverse=True)
        for n in e.nearest:
            assert n.condition in split.train
            q = sum(emb.vectors[data.gene_rows[g]] for g in e.condition.split("+") if g != "ctrl")
            t = sum(emb.vectors[data.gene_rows[g]] for g in n.condition.split("+") if g != "ctrl")
            assert n.cosine == pytest.approx(float(_unit(q) @ _unit(t)), abs=1e-4)
        for gene, neighbours in e.genes.items():
            assert neighbours and {n.symbol for n in neighbours} <= train_genes - {gene}
            assert all(-1 <= n.cosine <= 1 for n in neighbours)


def test_trained_condition_is_flagged_and_not_its_own_neighbour(explained):
    emb, data, split = explained
    (e,) = explain([split.train[0]], emb, split.train, data.gene_rows, k=5)
    assert e.trained and split.train[0] not in [n.condition for n in e.nearest]


def test_explain_predictor_reports_gene_sources(explained):
    emb, data, split = explained
    model = train(data, emb, split=split, method="gene_delta")
    out = explain_predictor(model, split.test, k=2)
    for e in out:
        for gene, source in e.gene_sources.items():
            if gene in model.known_genes_:
                assert source == model.gene_source_[gene] and gene not in e.gene_weights
            else:  # an unseen gene: the prior, or neighbour evidence with its weights
                assert source == ("neighbours" if model.neighbour_["lambda"] > 0 else "prior")
                assert (gene in e.gene_weights) == (source == "neighbours")
    text = format_explanations(out, k=2)
    assert text.count("nearest trained perturbations") == len(split.test)
    assert "estimate from" in text


def test_explanation_lists_neighbour_weights(explained):
    """A model that uses neighbour evidence (λ forced above 0) lists the trained genes an unseen gene borrows
    from, with the weights it gives them, heaviest first."""
    emb, data, split = explained
    model = train(data, emb, split=split, method="gene_delta")
    model.neighbour_ = {**model.neighbour_, "k": 3, "tau": 0.1, "lambda": 0.5}
    unseen = next(c for c in split.test if c.endswith("+ctrl") and c.split("+")[0] not in model.known_genes_)
    (e,) = explain_predictor(model, [unseen], k=3)
    gene = unseen.split("+")[0]
    weights = e.gene_weights[gene]
    assert e.gene_sources[gene] == "neighbours" and len(weights) == 3
    assert sum(w for _, w in weights) == pytest.approx(1.0, abs=1e-3)
    assert [w for _, w in weights] == sorted((w for _, w in weights), reverse=True)
    line = next(ln for ln in format_explanations([e], k=3).splitlines() if ln.startswith(f"    {gene} ["))
    assert f"[estimate from neighbours: {weights[0][0]} {weights[0][1]:.2f}" in line


def test_gene_without_embedding_is_input_error(explained):
    emb, data, split = explained
    with pytest.raises(InputError, match="NOTAGENE"):
        explain(["NOTAGENE+ctrl"], emb, split.train, data.gene_rows)
    with pytest.raises(InputError, match="k must be"):
        explain(split.test, emb, split.train, data.gene_rows, k=0)
