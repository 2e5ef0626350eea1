"""Which unmeasured perturbations will do anything: a calibrated probability of a detectable effect from the perturbed
gene's embedding, beside the "well-studied" baseline it must beat.

:class:`EffectModel` (a scikit-learn estimator) is fitted on the single-gene training conditions of a screen with
an :class:`~scouter_local.data.effect.EffectLabel`:

1. C of an L2 logistic regression on the standardised embedding is chosen by stratified cross-validation on
   log-loss (``LogisticRegressionCV``);
2. its probabilities are calibrated by ``CalibratedClassifierCV(method="sigmoid")`` over the same folds;
3. a k-nearest-neighbour vote (share of effect-labelled genes among the k training genes nearest by cosine,
   sigmoid-calibrated too) is the alternative, and the one with the lower nested cross-validated log-loss is kept;
4. with the genes' well-studied features (log document characters, log GO annotations, one-hot document kind: see
   :mod:`scouter_local.data.well_studied`), an unpenalised logistic on [out-of-fold logit, features] is stacked
   on top when its cross-validated log-loss is lower (``stacking="auto"``); its weights stay as fitted attributes;
5. a ridge regression (alpha by ``RidgeCV``) predicts the label's strength, for a second ordering.

Everything is chosen inside the training conditions; folds are seeded, so a fit is deterministic. Every fitted part
is linear (or a neighbour vote) and is kept as plain arrays (:meth:`EffectModel.state`), so a model folder holds
no pickle and the loaded model predicts what the fitted one did. :class:`WellStudied` is the baseline: an
unpenalised logistic on the well-studied features alone. :class:`EffectPart` is what a trained predictor carries:
the label, the two models (or why there are none) and the training genes that explain a ranking.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeCV
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from gene_corpus.errors import InputError
from scouter_local.conditions import genes_of, is_single
from scouter_local.data.effect import MIN_LABELLED, EffectLabel
from scouter_local.data.link import condition_rows
from scouter_local.data.perturbation import PerturbationData
from scouter_local.data.well_studied import well_studied_table
from scouter_local.embedding.sets import EmbeddingSet, unit_rows

#: Inverse L2 strengths searched for the logistic regression (on standardised features).
C_GRID = tuple(np.logspace(-4, 2, 13))
#: Neighbours tried by the k-nearest-neighbour vote.
K_GRID = (5, 10, 20, 40, 80)
#: Ridge penalties searched for the strength.
RIDGE_ALPHAS = tuple(np.logspace(-1, 5, 13))
#: Fewest conditions of each label (effect, none) the effect model is fitted with.
MIN_PER_CLASS = 5
#: ``model`` options of :class:`EffectModel`.
EFFECT_MODELS = ("auto", "logistic", "knn")
#: ``stacking`` options of :class:`EffectModel`.
STACKING = ("auto", "never", "always")
#: A kind of document is a one-hot well-studied feature when at least this many training genes have it.
MIN_KIND_GENES = 10
#: Probabilities are kept this far from 0 and 1 before a logit.
_EPS = 1e-6
#: Query rows scored at once by the neighbour vote (bounds the query × training similarity block).
_QUERY_CHUNK = 4096


def _scaled(model) -> Pipeline:
    return make_pipeline(StandardScaler(), model)


def _linear(pipeline: Pipeline) -> np.ndarray:
    """``(n_features + 1,)`` weights and intercept (last) of a fitted ``StandardScaler`` + linear model, on the raw
    features: ``X @ w[:-1] + w[-1]`` is the model's decision function."""
    scaler, model = pipeline[0], pipeline[-1]
    weights = np.ravel(model.coef_) / scaler.scale_
    return np.append(weights, np.ravel(model.intercept_)[0] - weights @ scaler.mean_)


def _apply(weights: np.ndarray, X: np.ndarray) -> np.ndarray:
    return np.asarray(X, dtype=np.float64) @ weights[:-1] + weights[-1]


@contextlib.contextmanager
def _fitting() -> Iterator[None]:
    """Where a model is fitted: one BLAS thread (the problems are small; on a busy machine two spinning threads made
    a fit 20 times slower) and scikit-learn's convergence and version-transition warnings hidden."""
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        for category in (ConvergenceWarning, FutureWarning, DeprecationWarning):
            warnings.simplefilter("ignore", category)
        yield


def neighbour_share(queries: np.ndarray, train: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """``(n_queries,)`` mean of ``values`` over each query's ``k`` nearest rows of ``train`` (both unit rows, so the
    inner product is the cosine); queries are scored in chunks."""
    k = min(k, len(train))
    out = np.empty(len(queries))
    for start in range(0, len(queries), _QUERY_CHUNK):
        sims = queries[start : start + _QUERY_CHUNK] @ train.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        out[start : start + _QUERY_CHUNK] = values[top].mean(axis=1)
    return out


class CosineVote(ClassifierMixin, BaseEstimator):
    """Share of effect-labelled genes among the ``n_neighbors`` training genes nearest by cosine (uncalibrated)."""

    def __init__(self, n_neighbors: int = 20) -> None:
        self.n_neighbors = n_neighbors

    def fit(self, X, y) -> CosineVote:
        self.X_ = unit_rows(X, np.float64)
        self.y_ = np.asarray(y, dtype=np.float64)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X) -> np.ndarray:
        share = neighbour_share(unit_rows(X, np.float64), self.X_, self.y_, self.n_neighbors)
        return np.column_stack([1 - share, share])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)


class EffectModel(ClassifierMixin, BaseEstimator):
    """A gene's embedding → calibrated probability that perturbing it has a detectable effect, and its strength.

    Parameters
    ----------
    model
        ``logistic``, ``knn`` (the cosine neighbour vote), or ``auto``: the one with the lower nested
        cross-validated log-loss.
    stacking
        Use the well-studied features passed to :meth:`fit`: ``auto`` (when cross-validated log-loss says they
        help), ``always`` or ``never``.
    Cs
        Inverse L2 strengths searched (on standardised features).
    ks
        Neighbours searched by the vote.
    cv
        Folds (stratified, shuffled with ``random_state``); fewer when a label has fewer conditions.
    random_state
        Seed of the folds.

    Attributes
    ----------
    model_
        ``logistic`` or ``knn``: the model kept.
    C_, n_neighbors_
        The logistic regression's chosen C; the vote's chosen k (``None`` unless ``knn``).
    n_folds_
        Folds used: ``min(cv, positives, negatives)``.
    cv_log_loss_
        Candidate (``logistic``, ``knn_5`` …) → its nested cross-validated log-loss, calibrated.
    stacking_log_loss_
        Cross-validated log-loss of the stacked model (``None`` without well-studied features).
    uses_well_studied_
        Whether predictions use the well-studied features (the stacked model was kept).
    well_studied_weights_
        ``(1 + n_well_studied,)`` standardised weights of the stacked model: the embedding's out-of-fold logit,
        then each well-studied feature (``None`` when not stacked).
    strength_alpha_
        Ridge penalty of the strength model (``None`` without a strength).
    base_rate_, n_, positives_
        Share of effect-labelled training genes, their number, and the effect-labelled ones.
    calibrated_
        The fitted ``CalibratedClassifierCV`` (after :meth:`fit` only; a loaded model predicts from its arrays).
    """

    def __init__(
        self,
        *,
        model: str = "auto",
        stacking: str = "auto",
        Cs: Sequence[float] = C_GRID,
        ks: Sequence[int] = K_GRID,
        cv: int = 5,
        random_state: int = 0,
    ) -> None:
        self.model = model
        self.stacking = stacking
        self.Cs = Cs
        self.ks = ks
        self.cv = cv
        self.random_state = random_state

    # -- fitting ------------------------------------------------------------------------------------------
    def fit(self, X, y, strength=None, well_studied=None) -> EffectModel:
        """Fit on the training genes.

        Parameters
        ----------
        X
            ``(n, dim)`` embeddings of the perturbed genes.
        y
            ``(n,)`` labels: 1 (bool ``True``) where perturbing the gene had a detectable effect.
        strength
            ``(n,)`` strength of each effect (e.g. log signal-to-noise), for :meth:`predict_strength`.
        well_studied
            ``(n, w)`` well-studied features (:func:`well_studied_features`), for stacking.

        Raises
        ------
        InputError
            Fewer than :data:`~scouter_local.data.effect.MIN_LABELLED` genes, or fewer than :data:`MIN_PER_CLASS`
            of either label.
        """
        if self.model not in EFFECT_MODELS or self.stacking not in STACKING:
            raise InputError(
                f"model={self.model!r}, stacking={self.stacking!r}: expected model in {', '.join(EFFECT_MODELS)} "
                f"and stacking in {', '.join(STACKING)}"
            )
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y).astype(int)
        self.n_folds_ = _fold_count(y, self.cv)
        self.classes_ = np.array([0, 1])
        self.n_, self.positives_, self.base_rate_ = len(y), int(y.sum()), float(y.mean())
        with _fitting():
            self._fit(X, y, strength, well_studied)
        return self

    def _fit(self, X: np.ndarray, y: np.ndarray, strength, well_studied) -> None:
        folds = self._folds(self.n_folds_)
        self.C_ = self._choose_c(X, y, folds)
        candidates = self._candidates()
        inner = self._folds(max(2, self.n_folds_ - 1))
        oof = {name: _out_of_fold(estimator, X, y, folds, inner) for name, estimator in candidates.items()}
        self.cv_log_loss_ = {name: float(log_loss(y, p, labels=[0, 1])) for name, p in oof.items()}
        best = min(self.cv_log_loss_, key=self.cv_log_loss_.get)
        self.calibrated_ = CalibratedClassifierCV(candidates[best], method="sigmoid", cv=folds).fit(X, y)
        self.model_ = "logistic" if best == "logistic" else "knn"
        self.n_neighbors_ = candidates[best].n_neighbors if self.model_ == "knn" else None
        self._keep_first_stage(X, y, folds)
        self._fit_stacking(oof[best], y, well_studied, folds, self.cv_log_loss_[best])
        self._fit_strength(X, strength)

    def _folds(self, n: int) -> StratifiedKFold:
        return StratifiedKFold(n, shuffle=True, random_state=self.random_state)

    def _choose_c(self, X: np.ndarray, y: np.ndarray, folds: StratifiedKFold) -> float:
        """The C of :attr:`Cs` with the best mean cross-validated log-loss (``LogisticRegressionCV``)."""
        search = LogisticRegressionCV(Cs=list(self.Cs), cv=folds, scoring="neg_log_loss", max_iter=5000, refit=False)
        _scaled(search).fit(X, y)
        scores = search.scores_
        scores = np.asarray(next(iter(scores.values())) if isinstance(scores, dict) else scores)
        mean = scores.reshape(folds.get_n_splits(), -1).mean(axis=0)
        return float(search.Cs_[int(np.argmax(mean))])

    def _candidates(self) -> dict[str, BaseEstimator]:
        out: dict[str, BaseEstimator] = {}
        if self.model in ("auto", "logistic"):
            out["logistic"] = _scaled(LogisticRegression(C=self.C_, max_iter=5000))
        if self.model in ("auto", "knn"):
            out.update({f"knn_{k}": CosineVote(k) for k in self.ks})
        return out

    def _keep_first_stage(self, X: np.ndarray, y: np.ndarray, folds: StratifiedKFold) -> None:
        """The calibrated model as arrays: per fold the sigmoid's ``(a, b)`` and the logistic's weights, or the
        fold's training rows for the vote (the unit training vectors and labels kept once)."""
        fitted = self.calibrated_.calibrated_classifiers_
        self.sigmoid_ = np.array([[c.calibrators[0].a_, c.calibrators[0].b_] for c in fitted], dtype=np.float64)
        if self.model_ == "logistic":
            self.logistic_ = np.stack([_linear(c.estimator) for c in fitted])
            return
        self.train_X_, self.train_y_ = unit_rows(X, np.float64), y.astype(np.float64)
        self.fold_rows_ = np.zeros((len(fitted), len(y)), dtype=bool)
        for i, (train, _) in enumerate(folds.split(X, y)):
            self.fold_rows_[i, train] = True

    def _fit_stacking(
        self, first: np.ndarray, y: np.ndarray, well_studied, folds: StratifiedKFold, first_loss: float
    ) -> None:
        """Stack an unpenalised logistic on [out-of-fold logit of ``first``, well-studied features] when asked."""
        self.stacking_log_loss_ = None
        self.uses_well_studied_ = False
        self.well_studied_weights_ = None
        if well_studied is None or self.stacking == "never":
            return
        Z = np.column_stack([logit(np.clip(first, _EPS, 1 - _EPS)), np.asarray(well_studied, dtype=np.float64)])
        stacker = _scaled(LogisticRegression(C=np.inf, max_iter=5000))
        stacked = cross_val_predict(stacker, Z, y, cv=folds, method="predict_proba")[:, 1]
        self.stacking_log_loss_ = float(log_loss(y, stacked, labels=[0, 1]))
        if self.stacking == "always" or self.stacking_log_loss_ < first_loss:
            stacker.fit(Z, y)
            self.uses_well_studied_ = True
            self.stack_ = _linear(stacker)
            self.well_studied_weights_ = np.ravel(stacker[-1].coef_).astype(np.float64)

    def _fit_strength(self, X: np.ndarray, strength) -> None:
        self.strength_alpha_ = None
        if strength is None:
            return
        strength = np.asarray(strength, dtype=np.float64)
        finite = np.isfinite(strength)
        ridge = _scaled(RidgeCV(alphas=list(RIDGE_ALPHAS))).fit(X[finite], strength[finite])
        self.strength_ = _linear(ridge)
        self.strength_alpha_ = float(ridge[-1].alpha_)

    # -- predicting ---------------------------------------------------------------------------------------
    def predict_embedding(self, X) -> np.ndarray:
        """``(n,)`` calibrated probability of the embedding alone (the first stage, fitted whatever ``stacking``
        says: what ``stacking="never"`` predicts): the mean over folds of ``sigmoid(-(a T + b))``, ``T`` the fold's
        logistic decision or neighbour vote (what ``CalibratedClassifierCV.predict_proba`` does)."""
        check_is_fitted(self, "sigmoid_")
        if self.model_ == "logistic":
            decision = np.asarray(X, dtype=np.float64) @ self.logistic_[:, :-1].T + self.logistic_[:, -1]
        else:
            unit = unit_rows(X, np.float64)
            decision = np.column_stack(
                [
                    neighbour_share(unit, self.train_X_[rows], self.train_y_[rows], self.n_neighbors_)
                    for rows in self.fold_rows_
                ]
            )
        return expit(-(decision * self.sigmoid_[:, 0] + self.sigmoid_[:, 1])).mean(axis=1)

    def predict_effect(self, X, well_studied=None) -> np.ndarray:
        """``(n,)`` calibrated probability that perturbing each gene has a detectable effect.

        ``well_studied`` (``(n, w)``, the features given to :meth:`fit`) is needed when
        :attr:`uses_well_studied_`.
        """
        first = self.predict_embedding(X)
        if not self.uses_well_studied_:
            return first
        if well_studied is None:
            raise InputError("this effect model uses the well-studied features; pass well_studied=FEATURES")
        Z = np.column_stack([logit(np.clip(first, _EPS, 1 - _EPS)), np.asarray(well_studied, dtype=np.float64)])
        return expit(_apply(self.stack_, Z))

    def predict_proba(self, X, well_studied=None) -> np.ndarray:
        """``(n, 2)``: probability of no effect, of an effect."""
        p = self.predict_effect(X, well_studied)
        return np.column_stack([1 - p, p])

    def predict(self, X, well_studied=None) -> np.ndarray:
        return (self.predict_effect(X, well_studied) > 0.5).astype(int)

    def predict_strength(self, X, well_studied=None) -> np.ndarray:
        """``(n,)`` predicted strength (units of the ``strength`` given to :meth:`fit`; from the embedding only)."""
        check_is_fitted(self, "sigmoid_")
        if self.strength_alpha_ is None:
            raise InputError("the effect model was fitted without a strength; pass strength= to fit")
        return _apply(self.strength_, X)

    # -- saving -------------------------------------------------------------------------------------------
    _ARRAYS = ("sigmoid_", "logistic_", "train_X_", "train_y_", "fold_rows_", "stack_", "strength_")
    _VALUES = (
        "model_",
        "C_",
        "n_neighbors_",
        "n_folds_",
        "cv_log_loss_",
        "stacking_log_loss_",
        "uses_well_studied_",
        "strength_alpha_",
        "base_rate_",
        "n_",
        "positives_",
    )

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """``(arrays, values)``: the fitted arrays, and the options and fitted values (JSON-ready)."""
        check_is_fitted(self, "sigmoid_")
        arrays = {name: getattr(self, name) for name in self._ARRAYS if hasattr(self, name)}
        values = {name: getattr(self, name) for name in self._VALUES}
        weights = self.well_studied_weights_
        values["well_studied_weights_"] = None if weights is None else weights.tolist()
        params = {**self.get_params(), "Cs": [float(c) for c in self.Cs], "ks": [int(k) for k in self.ks]}
        return arrays, {"params": params, **values}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], values: dict) -> EffectModel:
        """The model :meth:`state` describes."""
        model = cls(**values["params"])
        for name, value in arrays.items():
            setattr(model, name, np.asarray(value))
        for name in cls._VALUES:
            setattr(model, name, values[name])
        weights = values["well_studied_weights_"]
        model.well_studied_weights_ = None if weights is None else np.asarray(weights)
        model.classes_ = np.array([0, 1])
        return model


def _out_of_fold(estimator, X: np.ndarray, y: np.ndarray, folds: StratifiedKFold, inner: StratifiedKFold) -> np.ndarray:
    """``(n,)`` out-of-``folds`` probabilities of ``estimator`` sigmoid-calibrated over ``inner`` folds of each
    training part (a nested cross-validation: no probability comes from a model that saw its gene)."""
    calibrated = CalibratedClassifierCV(estimator, method="sigmoid", cv=inner)
    return cross_val_predict(calibrated, X, y, cv=folds, method="predict_proba")[:, 1]


def _fold_count(y: np.ndarray, cv: int) -> int:
    """``min(cv, positives, negatives)``; too few genes or too few of a label is an :class:`InputError`."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if len(y) < MIN_LABELLED:
        raise InputError(f"only {len(y)} labelled genes to learn from; the effect model needs at least {MIN_LABELLED}")
    if min(positives, negatives) < MIN_PER_CLASS:
        raise InputError(
            f"only {positives} of {len(y)} labelled genes have an effect and {negatives} have none; the effect "
            f"model needs at least {MIN_PER_CLASS} of each"
        )
    return min(cv, positives, negatives)


class WellStudied(ClassifierMixin, BaseEstimator):
    """The baseline: an unpenalised logistic regression on the well-studied features alone.

    Attributes
    ----------
    weights_
        ``(n_features,)`` weights on the standardised features.
    linear_
        ``(n_features + 1,)`` weights and intercept on the raw features (what predictions use).
    """

    def fit(self, W, y) -> WellStudied:
        """Fit on ``(n, w)`` features of the training genes and their ``(n,)`` labels."""
        pipeline = _scaled(LogisticRegression(C=np.inf, max_iter=5000))
        with _fitting():
            pipeline.fit(np.asarray(W, dtype=np.float64), np.asarray(y).astype(int))
        self.classes_ = np.array([0, 1])
        self.weights_ = np.ravel(pipeline[-1].coef_).astype(np.float64)
        self.linear_ = _linear(pipeline)
        return self

    def predict_effect(self, W) -> np.ndarray:
        """``(n,)`` probability of an effect from the features alone."""
        check_is_fitted(self, "linear_")
        return expit(_apply(self.linear_, W))

    def predict_proba(self, W) -> np.ndarray:
        p = self.predict_effect(W)
        return np.column_stack([1 - p, p])


def document_kinds(table: pd.DataFrame, *, min_genes: int = MIN_KIND_GENES) -> list[str]:
    """Document kinds one-hot encoded as well-studied features: those of at least ``min_genes`` genes of
    ``table`` (:func:`~scouter_local.data.well_studied.well_studied_table`), the most common one left out as the
    reference, sorted."""
    counts = table["kind"].value_counts()
    common = counts[counts >= min_genes]
    return sorted(common.index[1:]) if len(common) else []


def well_studied_features(table: pd.DataFrame, kinds: Sequence[str]) -> np.ndarray:
    """``(n, 2 + len(kinds))`` well-studied features of the genes of ``table``: log1p document characters, log1p
    GO annotations, and one column per document kind of ``kinds`` (1 where the gene's document is of that kind)."""
    kind = table["kind"].to_numpy()
    return np.column_stack(
        [
            np.log1p(table["doc_chars"].to_numpy(dtype=np.float64)),
            np.log1p(table["n_go"].to_numpy(dtype=np.float64)),
            *[(kind == k).astype(np.float64) for k in kinds],
        ]
    )


def well_studied_names(kinds: Sequence[str]) -> list[str]:
    """Names of the columns of :func:`well_studied_features`."""
    return ["log_doc_chars", "log_go_annotations", *(f"kind={k}" for k in kinds)]


@dataclass
class EffectPart:
    """The effect part of a trained predictor: its label, its models, or why it has none.

    Attributes
    ----------
    label
        The effect label of the training data (``None``: the data had none).
    reason
        Why there is no model (``None`` when there is one).
    model
        The fitted :class:`EffectModel` (``None`` with a ``reason``).
    baseline
        The :class:`WellStudied` baseline fitted on the same genes (``None`` without corpus features).
    genes
        The training genes (current symbols) the models were fitted on, in order.
    rows
        Their rows in the embedding set.
    kinds
        Document kinds of the well-studied features (``None``: the genes' corpus was not available).
    template
        Document template whose lengths are the well-studied features (``None``: the corpus default).
    """

    label: EffectLabel | None
    reason: str | None = None
    model: EffectModel | None = None
    baseline: WellStudied | None = None
    genes: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    kinds: list[str] | None = None
    template: str | None = None

    def require(self) -> EffectModel:
        """The model; an :class:`InputError` with the reason when there is none."""
        if self.model is None:
            raise InputError(f"the model has no effect part: {self.reason}")
        return self.model

    def features(self, entrez_ids: Sequence[int], db) -> np.ndarray | None:
        """``(n, w)`` well-studied features of genes, read from the corpus ``db`` (``None`` without kinds)."""
        if self.kinds is None:
            return None
        if db is None:
            raise InputError("the effect model reads the genes' well-studied features from the corpus; pass db=DB")
        return well_studied_features(well_studied_table(db, entrez_ids, template=self.template), self.kinds)

    def predict(self, rows: Sequence[int], embeddings: EmbeddingSet, db) -> pd.DataFrame:
        """``p_effect``, ``strength`` and ``well_studied`` (the baseline's probability, NaN without it) of the
        genes at ``rows`` of ``embeddings``; one row each, in order."""
        model = self.require()
        rows = np.asarray(rows, dtype=np.int64)
        X = embeddings.vectors[rows]
        W = self.features(embeddings.entrez_ids[rows], db)
        return pd.DataFrame(
            {
                "p_effect": model.predict_effect(X, W),
                "strength": model.predict_strength(X) if model.strength_alpha_ is not None else np.nan,
                "well_studied": self.baseline.predict_effect(W) if self.baseline is not None else np.nan,
            }
        )

    def describe(self) -> str:
        """One line: the model kept, its training genes and label, its cross-validated log-loss and whether it uses
        the well-studied features."""
        if self.model is None:
            return f"no effect model: {self.reason}"
        m = self.model
        kept = f"logistic C={m.C_:.3g}" if m.model_ == "logistic" else f"{m.n_neighbors_}-nearest-neighbour vote"
        loss = m.cv_log_loss_["logistic" if m.model_ == "logistic" else f"knn_{m.n_neighbors_}"]
        stacked = "uses the well-studied features" if m.uses_well_studied_ else "embedding only"
        return (
            f"effect model: {kept} ({stacked}) on {m.n_} labelled genes, {m.positives_} with an effect "
            f"({self.label.rule}); cross-validated log-loss {loss:.3f}"
        )

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """``(arrays, manifest)``: the models' arrays (keys ``model.*``, ``baseline.*``) and the JSON manifest: the
        label with every condition's statistic and label, the reason there is no model, the training genes, the
        names of the well-studied features (the order of ``model.well_studied_weights_[1:]`` and
        ``baseline.weights_``), the model's options, choices and cross-validated scores."""
        arrays: dict[str, np.ndarray] = {}
        manifest: dict = {
            "label": self.label.to_json() if self.label is not None else None,
            "reason": self.reason,
            "genes": list(self.genes),
            "rows": list(self.rows),
            "kinds": self.kinds,
            "well_studied_features": well_studied_names(self.kinds) if self.kinds is not None else None,
            "template": self.template,
            "model": None,
            "baseline": None,
        }
        if self.model is not None:
            model_arrays, manifest["model"] = self.model.state()
            arrays.update({f"model.{k}": v for k, v in model_arrays.items()})
        if self.baseline is not None:
            arrays["baseline.linear_"] = self.baseline.linear_
            manifest["baseline"] = {"weights_": self.baseline.weights_.tolist()}
        return arrays, manifest

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], manifest: dict) -> EffectPart:
        """The part :meth:`state` describes."""
        model = baseline = None
        if manifest.get("model") is not None:
            model = EffectModel.from_state(
                {k.removeprefix("model."): v for k, v in arrays.items() if k.startswith("model.")}, manifest["model"]
            )
        if manifest.get("baseline") is not None:
            baseline = WellStudied()
            baseline.classes_ = np.array([0, 1])
            baseline.linear_ = np.asarray(arrays["baseline.linear_"])
            baseline.weights_ = np.asarray(manifest["baseline"]["weights_"])
        label = EffectLabel.from_json(manifest["label"]) if manifest.get("label") is not None else None
        return cls(
            label,
            manifest.get("reason"),
            model,
            baseline,
            list(manifest.get("genes", [])),
            [int(r) for r in manifest.get("rows", [])],
            manifest.get("kinds"),
            manifest.get("template"),
        )


def fit_effect(
    data: PerturbationData,
    embeddings: EmbeddingSet,
    conditions: Sequence[str],
    label: EffectLabel,
    *,
    seed: int = 0,
    **options,
) -> EffectPart:
    """Fit the effect model and the well-studied baseline on the labelled single-gene ``conditions``.

    Parameters
    ----------
    data
        The screen (its ``gene_rows`` map genes to rows of ``embeddings``; its ``source['db']``, when recorded,
        gives the genes' well-studied features).
    embeddings
        The gene embeddings.
    conditions
        Training conditions (combinations and unlabelled conditions are left out).
    label
        The effect label of ``data``.
    seed
        Seed of the folds.
    options
        Options of :class:`EffectModel`.

    Raises
    ------
    InputError
        Too few labelled genes, or too few of either label (the message names the label's rule).
    """
    singles = [c for c in conditions if is_single(c) and c in label]
    genes = [genes_of(c)[0] for c in singles]
    rows = np.array([condition_rows(c, data.gene_rows, embeddings)[0] for c in singles], dtype=np.int64)
    try:
        y = label.labels(singles)
        _fold_count(y.astype(int), options.get("cv", 5))
    except InputError as exc:
        raise InputError(f"{exc} (single-gene training conditions labelled by {label.rule})") from None
    db = data.source.get("db")
    template = embeddings.spec.get("template")
    table = well_studied_table(db, embeddings.entrez_ids[rows], template=template) if db else None
    kinds = document_kinds(table) if table is not None else None
    W = well_studied_features(table, kinds) if table is not None else None
    model = EffectModel(random_state=seed, **options).fit(embeddings.vectors[rows], y, label.strengths(singles), W)
    baseline = WellStudied().fit(W, y) if W is not None else None
    return EffectPart(label, None, model, baseline, genes, rows.tolist(), kinds, template)


def combined_probability(p_genes: Sequence[float]) -> float:
    """The probability that perturbing several genes together has an effect, from each gene's: ``1 - Π(1 - p)``
    (at least one of them has one, genes taken as independent); a single gene's own probability."""
    return float(1.0 - np.prod(1.0 - np.asarray(p_genes, dtype=np.float64)))
