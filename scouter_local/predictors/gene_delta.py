"""``gene_delta``: control plus per-gene deltas, with neighbour evidence for genes training never saw.

Every gene gets one estimated change from control (its *delta*); a condition is predicted as control plus the sum
of its genes' deltas. A gene's delta comes from the most direct evidence training offers:

1. its own single-gene condition (the observed delta);
2. else the combinations it was trained in (averaged over them): the combination's delta minus the partners'
   trained single deltas; where a partner has no trained single, the gene's equal share of the combination's
   delta (half, for a pair) averaged with its estimate below, weighted ``share_weight`` : ``1 - share_weight``;
3. else (a gene training never saw) an estimate from its neighbours in the embedding space:
   ``prior + λ · (Σ_j w_j delta_j − mean_j delta_j)`` over the trained single genes ``j``, ``w`` = softmax of
   cosine / τ over the ``k`` most similar ones, where the prior is the average of the mean delta of all training
   conditions and the mean delta of the training singles, times ``prior_scale``.

``k``, ``τ`` and ``λ`` are chosen by K-fold cross-validation over the trained single genes (never the validation
or test conditions): each held-out gene is predicted from the others and scored by the Pearson correlation of its
change on its top-20 DE genes, the folds' scores weighted by each gene's reliability (the share of its observed
change that is signal: from a noise column, or from its cells' variances). λ = 0 (the prior alone) is on the grid,
and a λ > 0 is kept only when its cross-validated gain over λ = 0 exceeds one standard error of that gain: an
embedding without signal here falls back to the prior. The chosen values and the CV curve go into the model
manifest (``fitted.neighbour``, ``fitted.cv_curve``).

What differs from the ``knn`` baseline (a plain mean of the 5 nearest trained genes' deltas): the weights follow
the similarity, the evidence is centred (neighbours that are no more alike than average add nothing) and shrunk
toward the prior by λ, and all three are chosen by cross-validation with a fall-back to the prior.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import ClassVar

import numpy as np
import torch

from gene_corpus.errors import InputError
from scouter_local.conditions import condition_of, genes_of
from scouter_local.data.perturbation import PerturbationData
from scouter_local.embedding.sets import unit_rows
from scouter_local.predictors.base import Predictor
from scouter_local.runtime import DEFAULT_SEED
from scouter_local.stats import pearson

#: ``neighbour_`` of a fit that uses no neighbour evidence (every unseen gene gets the prior).
PRIOR_ONLY = {"k": 0, "tau": 1.0, "lambda": 0.0, "score": None, "prior_score": None, "gain": None, "gain_se": None}


def neighbour_weights(sim: np.ndarray, k: int, tau: float) -> np.ndarray:
    """``(m, n)`` softmax(cosine / τ) over each row's ``k`` most similar columns of ``sim`` ``(m, n)``, 0 elsewhere."""
    k = min(k, sim.shape[1])
    idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(sim, idx, 1)
    w = np.exp((top - top.max(axis=1, keepdims=True)) / tau)
    out = np.zeros(sim.shape)
    np.put_along_axis(out, idx, w / w.sum(axis=1, keepdims=True), 1)
    return out


def cv_scores(
    pool: np.ndarray,
    top: np.ndarray,
    *,
    folds: int,
    seed: int,
    lambdas: np.ndarray,
    prior: Callable[[np.ndarray], np.ndarray],
    offsets: Callable[[np.ndarray, np.ndarray], Iterable[tuple[Hashable, np.ndarray]]],
) -> tuple[list, np.ndarray]:
    """Cross-validated scores of ``prior + λ · offset`` for the ``(n, n_genes)`` deltas ``pool`` of trained genes.

    The genes are dealt into ``folds`` seeded folds. ``prior(fit)`` gives the ``(n_genes,)`` prior from the indices
    of the fitting genes; ``offsets(fit, held)`` yields ``(setting, (len(held), n_genes) offset)`` pairs, the same
    settings in the same order in every fold. Each held-out gene is scored by the Pearson correlation of its change
    on its top genes ``top`` ``(n, t)``. Returns the settings and the ``(n_settings, len(lambdas), n)`` scores, for
    :func:`one_se_choice`.
    """
    n = len(pool)
    fold = np.random.RandomState(seed).permutation(n) % min(folds, n)
    settings: list = []
    scores: list[np.ndarray] = []
    for f in np.unique(fold):
        held, fit = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
        observed = np.take_along_axis(pool[held], top[held], 1)
        base = prior(fit)[top[held]]
        for i, (setting, offset) in enumerate(offsets(fit, held)):
            if i == len(settings):  # the first fold
                settings.append(setting)
                scores.append(np.zeros((len(lambdas), n)))
            offset = np.take_along_axis(offset, top[held], 1)
            scores[i][:, held] = pearson(
                base[None] + lambdas[:, None, None] * offset[None], observed[None], constant=0.0
            )
    return settings, np.stack(scores)


def one_se_choice(scores: np.ndarray, reliability: np.ndarray) -> tuple[tuple[int, ...], float, float, np.ndarray]:
    """Pick a setting from cross-validated scores ``(*grid, n_lambda, n)`` (λ last but one; index 0 = λ = 0).

    The folds' per-gene scores are averaged with weights ``reliability`` ``(n,)``; the best setting is the first
    maximum (smallest values first). Returns its index, the weighted mean gain of its λ over λ = 0 at the same
    other values, that gain's standard error, and the ``(*grid, n_lambda)`` weighted mean scores: keep the λ only
    where the gain exceeds its standard error.
    """
    n = scores.shape[-1]
    weights = reliability / reliability.sum() if reliability.sum() > 0 else np.full(n, 1.0 / n)
    mean = scores @ weights
    best = np.unravel_index(np.argmax(mean), mean.shape)
    gain = scores[best] - scores[(*best[:-1], 0)]
    mean_gain = float(weights @ gain)
    n_eff = 1.0 / float((weights**2).sum())
    se = float(np.sqrt(max(float(weights @ (gain - mean_gain) ** 2), 0.0) / max(n_eff - 1.0, 1.0)))
    return tuple(int(i) for i in best), mean_gain, se, mean


class GeneDeltaPredictor(Predictor):
    """Control + sum of per-gene deltas (trained single, derived from combinations, or neighbour evidence).

    Parameters
    ----------
    seed
        Seed of the cross-validation folds (the fit is otherwise deterministic).
    prior_single_weight
        Weight of the mean single-gene delta in the prior of unseen genes; ``1 - prior_single_weight`` goes to
        the mean delta of all training conditions (``0`` gives ``train_mean``'s change for an unseen single).
    prior_scale
        Factor on the prior delta.
    share_weight
        For a gene seen only in combinations whose partner has no trained single: weight of its equal share of
        the combination's delta against its estimate (``1`` trusts the share alone).
    neighbours
        Use neighbour evidence for unseen genes (``False``: every unseen gene gets the prior).
    folds
        Cross-validation folds over the trained single genes.

    Fitted attributes
    -----------------
    known_genes_
        Genes with a delta from training (trained singles first, then genes seen only in combinations).
    gene_deltas_
        ``(n_known, n_genes)`` their deltas.
    gene_source_
        Gene → ``single`` or ``combination`` (where its delta came from).
    prior_delta_
        ``(n_genes,)`` the prior delta.
    neighbour_
        The chosen ``k``, ``tau``, ``lambda`` (0: the prior alone), their CV ``score``, the ``prior_score``
        (λ = 0), the ``gain`` over it and the gain's standard error ``gain_se``.
    cv_curve_
        λ → best CV score over ``k`` and ``tau``.
    """

    name = "gene_delta"
    uses_embeddings = True
    light = True
    #: Cross-validation grids (λ = 0 is the prior; λ ≤ 1 keeps the estimate between prior and neighbour average).
    K_GRID: ClassVar[tuple[int, ...]] = (10, 20, 50, 100, 200, 400)
    TAU_GRID: ClassVar[tuple[float, ...]] = (0.05, 0.1, 0.2, 0.5)
    LAMBDA_GRID: ClassVar[tuple[float, ...]] = tuple(i / 10 for i in range(11))
    #: Fewer trained single genes than this: no cross-validation, the prior alone.
    MIN_POOL: ClassVar[int] = 6

    def __init__(
        self,
        *,
        seed: int = DEFAULT_SEED,
        prior_single_weight: float = 0.5,
        prior_scale: float = 1.0,
        share_weight: float = 0.5,
        neighbours: bool = True,
        folds: int = 5,
    ) -> None:
        super().__init__(seed=seed)
        for key, value in (("prior_single_weight", prior_single_weight), ("share_weight", share_weight)):
            if not 0.0 <= value <= 1.0:
                raise InputError(f"gene_delta option {key}={value}: expected a value in [0, 1]")
        if folds < 2:
            raise InputError(f"gene_delta option folds={folds}: expected 2 or more")
        self.prior_single_weight = float(prior_single_weight)
        self.prior_scale = float(prior_scale)
        self.share_weight = float(share_weight)
        self.neighbours = bool(neighbours)
        self.folds = int(folds)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "prior_single_weight": self.prior_single_weight,
            "prior_scale": self.prior_scale,
            "share_weight": self.share_weight,
            "neighbours": self.neighbours,
            "folds": self.folds,
        }

    # -- fit --------------------------------------------------------------------------------------------
    def _prior(self, single_deltas: np.ndarray, combo_sum: np.ndarray | float, n_combos: int) -> np.ndarray:
        """The prior from ``(n, n_genes)`` single deltas and the sum / count of the combination deltas."""
        mean_all = (single_deltas.sum(axis=0) + combo_sum) / max(len(single_deltas) + n_combos, 1)
        mean_single = single_deltas.mean(axis=0) if len(single_deltas) else mean_all
        w = self.prior_single_weight
        return self.prior_scale * ((1.0 - w) * mean_all + w * mean_single)

    def _fit(self, train: PerturbationData, val: PerturbationData | None) -> None:
        single_deltas, combos = self._observed_deltas(train)
        singles = {genes_of(c)[0]: d for c, d in single_deltas.items()}
        pool = np.asarray(list(singles.values())).reshape(len(singles), len(self.control_mean_))
        combo_sum = np.sum(list(combos.values()), axis=0) if combos else 0.0
        self.prior_delta_ = self._prior(pool, combo_sum, len(combos)).astype(np.float32)
        self.known_genes_ = list(singles)
        self.gene_source_ = {g: "single" for g in singles}
        self.gene_deltas_ = pool.astype(np.float32)
        self.neighbour_ = dict(PRIOR_ONLY)
        self.cv_curve_: dict[str, float] = {}
        if self.neighbours and len(singles) >= self.MIN_POOL:
            conditions = list(single_deltas)
            top = min(len(train.de_genes[c]) for c in conditions)
            self._cross_validate(
                pool,
                np.stack([train.de_genes[c][:top] for c in conditions]),
                train.reliability(conditions),
                combo_sum,
                len(combos),
            )
        self._add_combination_genes(singles, combos)

    def _observed_deltas(self, train: PerturbationData) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """``(n_genes,)`` float64 deltas (condition mean − control mean) of the trained single-gene conditions and of
        the trained combinations, by condition."""
        ctrl = self.control_mean_.astype(np.float64)
        deltas = {c: train.condition_mean(c).astype(np.float64) - ctrl for c in train.perturbations}
        singles = {c: d for c, d in deltas.items() if len(genes_of(c)) == 1}
        return singles, {c: d for c, d in deltas.items() if len(genes_of(c)) > 1}

    def _add_combination_genes(self, singles: dict[str, np.ndarray], combos: dict[str, np.ndarray]) -> None:
        """Add the genes seen only in combinations to the known genes (step 2 of the module notes).

        A gene's delta is the mean over its combinations of the combination's delta minus its partners' trained
        single deltas ``singles`` (gene → delta); where a partner has no trained single, of its equal share of the
        combination's delta blended with its estimate.
        """
        unseen = sorted({g for c in combos for g in genes_of(c)} - set(singles))
        estimates = dict(zip(unseen, self._estimate(unseen)))
        derived: dict[str, list[np.ndarray]] = {}
        for c, d in combos.items():
            genes = genes_of(c)
            for g in genes:
                if g in singles:
                    continue
                partners = [h for h in genes if h != g]
                if all(h in singles for h in partners):
                    derived.setdefault(g, []).append(d - sum(singles[h] for h in partners))
                else:
                    derived.setdefault(g, []).append(
                        self.share_weight * d / len(genes) + (1.0 - self.share_weight) * estimates[g]
                    )
        self.gene_source_.update({g: "combination" for g in derived})
        self.known_genes_ += sorted(derived)
        means = np.asarray([np.mean(derived[g], axis=0) for g in sorted(derived)], dtype=np.float32)
        self.gene_deltas_ = np.concatenate([self.gene_deltas_, means.reshape(len(derived), self.gene_deltas_.shape[1])])

    @classmethod
    def k_grid(cls, n: int) -> list[int]:
        """The values of ``k`` tried with ``n`` trained single genes (those of :attr:`K_GRID` below ``n``)."""
        return [k for k in cls.K_GRID if k < n] or [n - 1]

    def _cross_validate(self, pool: np.ndarray, top: np.ndarray, reliability: np.ndarray, combo_sum, n_combos: int):
        """Choose ``k``, ``tau``, ``lambda`` by K-fold CV over the trained single genes (see the module notes)."""
        vectors = self._pool_vectors()
        lams = np.asarray(self.LAMBDA_GRID)
        ks = self.k_grid(len(pool))

        def offsets(fit: np.ndarray, held: np.ndarray):
            sim = vectors[held] @ vectors[fit].T
            for k in ks:
                for tau in self.TAU_GRID:
                    yield (k, tau), neighbour_weights(sim, k, tau) @ pool[fit] - pool[fit].mean(axis=0)

        settings, scores = cv_scores(
            pool,
            top,
            folds=self.folds,
            seed=self.seed,
            lambdas=lams,
            prior=lambda fit: self._prior(pool[fit], combo_sum, n_combos),
            offsets=offsets,
        )
        (i, c), mean_gain, se, mean = one_se_choice(scores, reliability)
        k, tau = settings[i]
        self.neighbour_ = {
            "k": int(k),
            "tau": float(tau),
            "lambda": float(lams[c]) if mean_gain > se else 0.0,
            "score": float(mean[i, c]),
            "prior_score": float(mean[i, 0]),
            "gain": mean_gain,
            "gain_se": se,
        }
        self.cv_curve_ = {f"{lam:g}": float(v) for lam, v in zip(lams, mean.max(axis=0))}

    # -- neighbour evidence -----------------------------------------------------------------------------
    def _pool(self) -> list[str]:
        """The trained single genes (the neighbours an unseen gene borrows from)."""
        return [g for g in self.known_genes_ if self.gene_source_[g] == "single"]

    def _pool_vectors(self) -> np.ndarray:
        return unit_rows(self.condition_embedding([condition_of([g]) for g in self._pool()]), np.float64)

    def neighbour_evidence(self, genes: list[str]) -> np.ndarray:
        """``(len(genes), n_pool)`` weights of the trained single genes in each gene's estimate (all 0 when the
        prior alone is used)."""
        p = self.neighbour_
        n_pool = len(self._pool())
        if not genes or p["lambda"] == 0:
            return np.zeros((len(genes), n_pool))
        queries = unit_rows(self.condition_embedding([condition_of([g]) for g in genes]), np.float64)
        return neighbour_weights(queries @ self._pool_vectors().T, p["k"], p["tau"])

    def _estimate(self, genes: list[str]) -> np.ndarray:
        """``(len(genes), n_genes)`` prior + λ · centred neighbour evidence of genes without a trained single."""
        prior = self.prior_delta_.astype(np.float64)
        lam = self.neighbour_["lambda"]
        if not genes or lam == 0:
            return np.tile(prior, (len(genes), 1))
        pool = self.gene_deltas_[: len(self._pool())].astype(np.float64)
        return prior + lam * (self.neighbour_evidence(genes) @ pool - pool.mean(axis=0))

    def evidence(self, genes: list[str], *, top: int = 5) -> dict[str, dict]:
        """Where each gene's delta comes from: ``{"source": single | combination | neighbours | prior,
        "neighbours": [(gene, weight), …]}`` (the ``top`` heaviest neighbours, for ``neighbours``)."""
        self._check_fitted()
        pool = self._pool()
        out = {}
        unseen = [g for g in dict.fromkeys(genes) if g not in self.gene_source_]
        weights = dict(zip(unseen, self.neighbour_evidence(unseen)))
        for g in dict.fromkeys(genes):
            if g in self.gene_source_:
                out[g] = {"source": self.gene_source_[g], "neighbours": []}
            elif self.neighbour_["lambda"] > 0:
                order = np.argsort(-weights[g], kind="stable")[:top]
                out[g] = {
                    "source": "neighbours",
                    "neighbours": [(pool[j], round(float(weights[g][j]), 4)) for j in order if weights[g][j] > 0],
                }
            else:
                out[g] = {"source": "prior", "neighbours": []}
        return out

    # -- predict ----------------------------------------------------------------------------------------
    def gene_delta(self, genes: list[str]) -> np.ndarray:
        """``(len(genes), n_genes)`` estimated delta of each gene."""
        self._check_fitted()
        index = {g: i for i, g in enumerate(self.known_genes_)}
        unseen = [g for g in dict.fromkeys(genes) if g not in index]
        estimate = dict(zip(unseen, self._estimate(unseen).astype(np.float32)))
        return np.stack([self.gene_deltas_[index[g]] if g in index else estimate[g] for g in genes])

    def _predict(self, conditions: list[str]) -> np.ndarray:
        genes = list(dict.fromkeys(g for c in conditions for g in genes_of(c)))
        delta = dict(zip(genes, self.gene_delta(genes)))  # one neighbour search for all unseen genes
        return np.stack([self.control_mean_ + np.sum([delta[g] for g in genes_of(c)], axis=0) for c in conditions])

    def _state(self) -> dict[str, torch.Tensor]:
        return {"gene_deltas": torch.from_numpy(self.gene_deltas_), "prior_delta": torch.from_numpy(self.prior_delta_)}

    def _meta(self) -> dict:
        return {
            "known_genes": self.known_genes_,
            "gene_source": self.gene_source_,
            "neighbour": self.neighbour_,
            "cv_curve": self.cv_curve_,
        }

    def _load_state(self, state: dict[str, torch.Tensor], meta: dict) -> None:
        self.gene_deltas_ = state["gene_deltas"].numpy()
        self.prior_delta_ = state["prior_delta"].numpy()
        self.known_genes_ = list(meta["known_genes"])
        self.gene_source_ = dict(meta["gene_source"])
        self.neighbour_ = dict(meta.get("neighbour") or PRIOR_ONLY)
        self.cv_curve_ = dict(meta.get("cv_curve") or {})
