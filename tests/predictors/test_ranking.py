"""The effect part of a trained model on a synthetic screen: fitted beside the method, saved and loaded without a
pickle, ``p_effect`` in predictions, each condition's label in evaluate, and ``rank`` of the unmeasured genes (or its
refusal, with the reason, where a model has no effect part)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

import scouter_local as sl
from gene_corpus.errors import InputError
from scouter_local.data.effect import EffectLabel
from scouter_local.evaluation.results import write_report
from scouter_local.predictors.checkpoint import MANIFEST, WEIGHTS
from scouter_local.predictors.prediction import write_predictions
from scouter_local.predictors.ranking import N_EXPLAINING, RANK_COLUMNS, ranking_json


def factor_label(screen, *, positives: float = 0.25) -> EffectLabel:
    """Effect where the first latent factor (which the informative embedding carries) is high; strength = it."""
    factor = pd.Series(
        screen.informative.vectors[:, 0].astype(np.float64), index=[f"{s}+ctrl" for s in screen.informative.symbols]
    )
    above = float(factor.quantile(1 - positives))
    table = pd.DataFrame({"statistic": factor, "strength": factor, "label": factor > above})
    table.index.name = "condition"
    return EffectLabel(f"factor > {above:.3g}", "threshold", table, {"above": above})


@pytest.fixture(scope="module")
def model(screen):
    return sl.train(
        screen.data, screen.informative, method="train_mean", split=screen.split, effect=factor_label(screen), seed=1
    )


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    return sl.save_model(model, tmp_path_factory.mktemp("effect") / "model")


def test_the_effect_part_is_fitted_on_the_training_singles(model, screen):
    effect = model.effect_
    assert effect.model is not None and effect.reason is None
    assert effect.genes == [c.split("+")[0] for c in screen.split.train]
    assert [screen.informative.symbols[r] for r in effect.rows] == effect.genes
    assert effect.baseline is None and effect.kinds is None  # data in memory: no corpus, no well-studied features
    positives = int(effect.label.labels(screen.split.train).sum())
    assert effect.describe().startswith("effect model: ")
    assert f"on 200 labelled genes, {positives} with an effect ({effect.label.rule})" in effect.describe()


def test_the_model_folder_keeps_the_effect_part(model, saved, screen):
    manifest = json.loads((saved / MANIFEST).read_text())
    label = manifest["effect"]["label"]
    assert label["rule"] == model.effect_.label.rule and len(label["conditions"]) == 240
    assert set(label["conditions"][0]) == {"condition", "statistic", "strength", "label"}
    chosen = manifest["effect"]["model"]
    assert chosen["model_"] in ("logistic", "knn") and set(chosen["cv_log_loss_"]) >= {"logistic", "knn_5"}
    weights = torch.load(saved / WEIGHTS, weights_only=True)
    assert any(k.startswith("effect.model.") for k in weights)
    loaded = sl.load_model(saved, screen.informative)
    X = screen.informative.vectors
    assert np.array_equal(loaded.effect_.model.predict_effect(X), model.effect_.model.predict_effect(X))
    assert loaded.effect_.genes == model.effect_.genes and loaded.effect_.rows == model.effect_.rows


def test_predict_adds_each_conditions_probability(model, tmp_path):
    pred = sl.predict(model, ["G210", "G1+G220"])
    genes = pred.uns["scouter_local"]["p_effect_genes"]
    assert set(genes) == {"G1", "G210", "G220"}
    assert pred.obs.loc["G210+ctrl", "p_effect"] == pytest.approx(genes["G210"])
    assert pred.obs.loc["G1+G220", "p_effect"] == pytest.approx(1 - (1 - genes["G1"]) * (1 - genes["G220"]))
    frame = pd.read_csv(write_predictions(pred, tmp_path / "p.csv"), index_col=0)
    assert frame.columns[0] == "p_effect" and frame["p_effect"].tolist() == pytest.approx(pred.obs["p_effect"].tolist())
    assert frame.shape[1] == 1 + pred.n_vars


def test_evaluate_shows_each_conditions_label(model, tmp_path):
    result = sl.evaluate(model)
    row = result.conditions.iloc[0]
    assert row["effect"] == model.effect_.label.row(row["condition"])["effect"]
    assert result.info["effect_rule"] == model.effect_.label.rule
    json_path, csv_path = write_report(result, tmp_path / "e.json")
    conditions = json.loads(json_path.read_text())["conditions"]
    assert {"effect", "effect_statistic", "normmse"} <= set(conditions[0])
    assert list(pd.read_csv(csv_path).columns[-2:]) == ["effect", "effect_statistic"]


def test_rank_orders_the_unmeasured_genes(model, screen):
    ranked = sl.rank(model)
    test = [c.split("+")[0] for c in screen.split.test]
    assert list(ranked.columns) == list(RANK_COLUMNS)
    assert sorted(ranked["symbol"]) == sorted(test) and ranked["rank"].tolist() == list(range(1, 41))
    assert ranked["p_effect"].is_monotonic_decreasing and ranked["reason"].isna().all()
    labels = factor_label(screen).labels(screen.split.test)
    assert roc_auc_score(labels, ranked.set_index("symbol").loc[test, "p_effect"]) > 0.8
    measured = set(model.effect_.genes)
    first = ranked.iloc[0]["neighbours"]
    assert len(first) == N_EXPLAINING and {n["symbol"] for n in first} <= measured
    assert [n["cosine"] for n in first] == sorted((n["cosine"] for n in first), reverse=True)
    assert all(isinstance(n["label"], bool) for n in first)
    assert len(sl.rank(model, top=5)) == 5
    everything = sl.rank(model, all_genes=True)
    assert len(everything) == 240
    own = everything.set_index("symbol").loc["G0", "neighbours"]
    assert "G0" not in {n["symbol"] for n in own}  # a measured gene is not its own explanation


def test_rank_json_keys(model):
    out = ranking_json(sl.rank(model, top=3))
    assert set(out) == {"ranked", "not_ranked"} and out["not_ranked"] == []
    first = out["ranked"][0]
    assert list(first) == ["rank", "symbol", "entrez_id", "p_effect", "strength", "well_studied", "neighbours"]
    assert first["rank"] == 1 and first["well_studied"] is None and first["entrez_id"] is None
    assert set(first["neighbours"][0]) == {"symbol", "cosine", "label", "strength"}
    json.dumps(out)


def test_an_old_model_folder_loads_and_rank_refuses(saved, screen, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    manifest = json.loads((saved / MANIFEST).read_text())
    del manifest["effect"]
    (old / MANIFEST).write_text(json.dumps(manifest))
    weights = torch.load(saved / WEIGHTS, weights_only=True)
    torch.save({k: v for k, v in weights.items() if not k.startswith("effect.")}, old / WEIGHTS)
    loaded = sl.load_model(old, screen.informative)
    assert loaded.effect_ is None and "p_effect" not in sl.predict(loaded, ["G210"]).obs
    with pytest.raises(InputError, match="the model has no effect part: it was trained without an effect label"):
        sl.rank(loaded)


def test_too_few_labels_warn_and_rank_refuses_with_the_reason(screen, tmp_path):
    with pytest.warns(
        UserWarning, match=r"the model has no effect part .*only \d of 200 labelled genes have an effect"
    ):
        model = sl.train(
            screen.data,
            screen.informative,
            method="no_change",
            split=screen.split,
            effect=factor_label(screen, positives=0.015),
        )
    assert model.effect_.model is None and "needs at least 5 of each" in model.effect_.reason
    loaded = sl.load_model(sl.save_model(model, tmp_path / "m"), screen.informative)
    with pytest.raises(InputError, match=r"the model has no effect part: only \d of 200 labelled genes") as info:
        sl.rank(loaded)
    assert "\n" not in str(info.value)


def test_pseudo_bulk_without_a_column_has_no_effect_part(screen):
    model = sl.train(screen.data, screen.informative, method="no_change", split=screen.split)
    assert model.effect_ is None
    with pytest.raises(InputError, match="effect='maybe': expected 'auto', an EffectLabel or None"):
        sl.train(screen.data, screen.informative, method="no_change", split=screen.split, effect="maybe")
    with pytest.raises(InputError, match="`strong_key` and `strong_above` go together"):
        sl.train(screen.data, screen.informative, method="no_change", split=screen.split, strong_key="snr")
