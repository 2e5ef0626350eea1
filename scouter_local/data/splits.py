"""Condition splits (Scouter's random split, GEARS's simulation split, none, a JSON file) and the subgroups of test
conditions (what training saw of their genes).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gene_corpus.errors import InputError
from gene_corpus.files import write_json_atomic
from scouter_local.conditions import genes_in, genes_of, is_single
from scouter_local.data.perturbation import PerturbationData
from scouter_local.runtime import DEFAULT_SEED

SPLIT_KINDS = ("scouter", "simulation", "none")


SUBGROUPS = ("single", "single_seen", "combo_seen0", "combo_seen1", "combo_seen2")


@dataclass(frozen=True)
class Split:
    """Perturbed conditions of each part (``ctrl`` belongs to all). ``kind``/``seed`` say how it was drawn."""

    train: list[str]
    val: list[str]
    test: list[str]
    kind: str = "none"
    seed: int | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict, *, where: str = "split") -> "Split":
        missing = [k for k in ("train", "val", "test") if k not in d]
        if missing:
            raise InputError(f"{where}: split JSON lacks key(s) {', '.join(missing)} (need train, val, test lists)")
        return cls(
            train=list(d["train"]),
            val=list(d["val"]),
            test=list(d["test"]),
            kind=d.get("kind", "file"),
            seed=d.get("seed"),
        )

    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, self.to_json())


def _ratio_split(conds: list[str], ratio: float, rng: np.random.RandomState) -> tuple[list[str], list[str]]:
    """Scouter's ``split_TrainVal``: shuffle, first ``round(ratio * n)`` go out, the rest stay."""
    conds = list(conds)
    rng.shuffle(conds)
    n_out = round(ratio * len(conds))
    return conds[n_out:], conds[:n_out]


def scouter_split(
    conditions: list[str], *, test_ratio: float = 0.2, val_ratio: float = 0.1, seed: int = DEFAULT_SEED
) -> Split:
    """Scouter's condition split (``ScouterData.split_Train_Val_Test``): test drawn first, then val from the rest.

    ``conditions`` must be in order of first appearance in the data, as Scouter reads them, so that the same
    seed gives the same split.
    """
    rest, test = _ratio_split(conditions, test_ratio, np.random.RandomState(seed))
    order = [c for c in conditions if c in set(rest)]  # Scouter re-reads the order from the remaining cells
    train, val = _ratio_split(order, val_ratio, np.random.RandomState(seed))
    return Split(train=train, val=val, test=test, kind="scouter", seed=seed)


def _simulation_part(perts: list[str], train_gene_frac: float, combo_seen2_train_frac: float, seed: int):
    genes = np.array(genes_in(perts), dtype=object)
    rng = np.random.RandomState(seed)
    train_genes = set(rng.choice(genes, int(len(genes) * train_gene_frac), replace=False))
    singles = [p for p in perts if is_single(p)]
    combos = [p for p in perts if not is_single(p)]
    n_seen = {p: sum(g in train_genes for g in genes_of(p)) for p in combos}
    train = [p for p in singles if genes_of(p)[0] in train_genes]
    seen2 = np.array(sorted(p for p in combos if n_seen[p] == 2), dtype=object)
    rng = np.random.RandomState(seed)
    seen2_train = list(rng.choice(seen2, int(len(seen2) * combo_seen2_train_frac), replace=False)) if len(seen2) else []
    train += seen2_train
    out = [p for p in perts if p not in set(train)]
    return train, out


def simulation_split(
    conditions: list[str],
    *,
    seed: int = DEFAULT_SEED,
    train_gene_frac: float = 0.75,
    combo_seen2_train_frac: float = 0.75,
) -> Split:
    """GEARS's ``simulation`` split: unseen genes' singles and combos with 0/1 seen genes go to test, plus a
    ``1 - combo_seen2_train_frac`` share of combos with both genes seen; val is drawn the same way (0.9/0.9)."""
    train, test = _simulation_part(conditions, train_gene_frac, combo_seen2_train_frac, seed)
    train, val = _simulation_part(train, 0.9, 0.9, seed)
    return Split(train=train, val=val, test=test, kind="simulation", seed=seed)


def make_split(
    data: PerturbationData, kind: str, *, seed: int = DEFAULT_SEED, test_ratio: float = 0.2, val_ratio: float = 0.1
) -> Split:
    """Draw a split of ``data``'s conditions: ``scouter``, ``simulation``, ``none`` (all train) or a JSON file."""
    for option, ratio in (("test_ratio", test_ratio), ("val_ratio", val_ratio)):
        if not 0.0 <= ratio < 1.0:
            raise InputError(f"{option}={ratio:g}: expected a fraction of the conditions in [0, 1), e.g. 0.2")
    perts = data.perturbations
    if kind == "scouter":
        split = scouter_split(perts, test_ratio=test_ratio, val_ratio=val_ratio, seed=seed)
    elif kind == "simulation":
        split = simulation_split(perts, seed=seed)
    elif kind == "none":
        split = Split(train=list(perts), val=[], test=[], kind="none", seed=seed)
    elif kind.endswith(".json"):
        path = Path(kind)
        if not path.exists():
            raise InputError(f"split={kind!r}: no such file")
        try:
            split = Split.from_json(json.loads(path.read_text()), where=str(path))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
        unknown = [c for c in split.train + split.val + split.test if c not in set(perts)]
        if unknown:
            raise InputError(f"{path}: condition {unknown[0]!r} is not in the data (spell it as 'A+ctrl' / 'A+B')")
    else:
        raise InputError(f"split={kind!r}: expected one of {', '.join(SPLIT_KINDS)} or a .json file")
    if not split.train:
        raise InputError(f"split {kind!r} leaves no training condition")
    return split


def subgroup(condition: str, train_conditions: Sequence[str]) -> str:
    """Label a condition by what training saw: ``single`` (gene unseen), ``single_seen`` (gene only inside a
    training combination), ``combo_seen0/1/2`` (how many of its genes appear in training conditions)."""
    seen = set(genes_in(train_conditions))
    genes = genes_of(condition)
    if len(genes) == 1:
        return "single_seen" if genes[0] in seen else "single"
    return f"combo_seen{sum(g in seen for g in genes)}"
