"""Checks of a screen at the door, before any work: the AnnData itself, its readout genes, its conditions and its
values. Each failure is one :class:`~gene_corpus.errors.InputError` line naming the file, the gene or the condition
and the fix; names made unique by rule come with a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd

from gene_corpus.checks import check_type
from gene_corpus.errors import InputError
from scouter_local.conditions import CTRL
from scouter_local.data.cells import ConditionStats

#: Largest magnitude accepted for an expression value (or a mean or spread of them): log-normalised values stay
#: below ~20 and raw counts far below this; beyond it the squared errors of the metrics overflow float32.
MAX_VALUE = 1e6


def check_anndata(adata: object, name: str = "adata") -> ad.AnnData:
    """``adata`` if it is an AnnData, else an :class:`~gene_corpus.errors.InputTypeError` that says what to pass."""
    check_type(
        adata,
        ad.AnnData,
        name,
        "an AnnData of cells × genes with the condition in obs (e.g. anndata.read_h5ad(FILE)) or an h5ad file's path",
    )
    return adata


def check_has_genes(adata: ad.AnnData, where: str) -> None:
    """At least one readout gene (a column of ``X``)."""
    if adata.n_vars == 0:
        raise InputError(f"{where}: no readout genes (X has 0 columns); a screen needs the expression of some genes")


def unique_gene_names(genes: Sequence[str], where: str) -> list[str]:
    """``genes`` made unique with AnnData's rule (a repeat of ``G`` becomes ``G-1``, ``G-2`` …), with a warning
    that names the repeated genes; unique names are returned as they are."""
    index = pd.Index(genes)
    if index.is_unique:
        return list(genes)
    repeated = list(dict.fromkeys(index[index.duplicated()]))
    unique = list(ad.utils.make_index_unique(index))
    warnings.warn(
        f"{where}: {len(repeated)} readout gene name(s) occur more than once ({', '.join(map(str, repeated[:5]))}"
        f"{' …' if len(repeated) > 5 else ''}); repeats are renamed as AnnData.var_names_make_unique does "
        f"({repeated[0]} → {repeated[0]}-1); rename them in the file to choose other names",
        stacklevel=3,
    )
    return unique


def check_conditions(conditions: np.ndarray, where: str) -> None:
    """At least one perturbed condition, and no two conditions whose names differ only in case."""
    names = [str(c) for c in pd.unique(conditions)]
    if not any(c != CTRL for c in names):
        raise InputError(
            f"{where}: every selected row is control, no row is perturbed; a screen needs perturbed cells "
            "beside the control (check the condition column and the control label)"
        )
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(name.upper(), name)
        if other != name:
            raise InputError(
                f"{where}: conditions {other!r} and {name!r} differ only in case; spell each gene one way in the "
                "file (gene symbols are case-sensitive, so they would be read as different genes)"
            )


def check_values(stats: ConditionStats, where: str) -> None:
    """Finite values on the expected scale: no NaN or infinity, and means and spreads within :data:`MAX_VALUE`."""
    finite = np.isfinite(stats.mean).all(axis=1)
    if not finite.all():
        condition = stats.names[int(np.argmin(finite))]
        raise InputError(
            f"{where}: condition {condition!r} has NaN or infinite expression values; remove those cells or genes, "
            "or fill the missing values, before reading the file"
        )
    with np.errstate(invalid="ignore"):
        spread = np.where(stats.n[:, None] > 1, np.sqrt(stats.var), 0.0)
    size = np.abs(stats.mean) + np.nan_to_num(spread, nan=np.inf)
    peak = float(size.max()) if size.size else 0.0
    if peak > MAX_VALUE:
        condition = stats.names[int(np.argmax(size.max(axis=1)))]
        raise InputError(
            f"{where}: expression values reach about {peak:.3g} (condition {condition!r}); expected log-normalised "
            f"values (below ~20) or raw counts (pass normalize=True), never above {MAX_VALUE:g}"
        )
