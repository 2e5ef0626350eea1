"""Reading a screen: an AnnData (in memory or an h5ad file, backed when large) → :class:`PerturbationData`.

Pseudo-bulk delta files (one row per perturbation, values = change from control) have no control cells: their
control is the zero vector.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from gene_corpus.checks import check_type
from gene_corpus.errors import InputError, OptionError
from scouter_local.conditions import CTRL, spell_condition
from scouter_local.data.cells import CellMatrix, condition_stats
from scouter_local.data.de import compute_de_genes
from scouter_local.data.hdf5 import check_hdf5
from scouter_local.data.options import DataOptions
from scouter_local.data.perturbation import PerturbationData
from scouter_local.data.validate import (
    check_anndata,
    check_conditions,
    check_has_genes,
    check_values,
    unique_gene_names,
)

#: Files larger than this are opened backed (only the selected rows are read into memory).
BACKED_BYTES = 2 * 1024**3


#: Labels that name control cells in common files (named in the error when --control matches no row).
_CONTROL_WORDS = frozenset(
    {
        "control",
        "non-targeting",
        "nontargeting",
        "non-targeting-control",
        "nt",
        "negative",
        "scramble",
        "safe-targeting",
        "unperturbed",
    }
)


def open_h5ad(path: str | os.PathLike, backed: bool | None = None) -> ad.AnnData:
    """An h5ad file read whole, or backed (``X`` stays on disk) when ``backed`` or, by default, above
    :data:`BACKED_BYTES`; its structure is checked first (:func:`~scouter_local.data.hdf5.check_hdf5`), so a damaged
    file is one :class:`InputError` line within seconds, never a hang."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file" if not path.exists() else f"{path}: not a file, expected an h5ad file")
    if backed is None:
        backed = path.stat().st_size > BACKED_BYTES
    check_hdf5(path)
    try:
        return ad.read_h5ad(path, backed="r" if backed else None)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise InputError(f"{path}: not a readable h5ad file ({reason}); copy or export it again") from exc


def _columns(frame: pd.DataFrame) -> str:
    return ", ".join(map(str, frame.columns))


def _selected_rows(adata: ad.AnnData, options: DataOptions, where: str) -> np.ndarray:
    """Sorted rows kept by ``options.subset``; the condition key is checked."""
    keep = np.ones(adata.n_obs, dtype=bool)
    for key, value in options.subset:
        if key not in adata.obs:
            raise InputError(f"{where}: `subset` key {key!r} not in obs (columns: {_columns(adata.obs)})")
        keep &= adata.obs[key].astype(str).to_numpy() == value
        if not keep.any():
            raise InputError(f"{where}: no row has obs[{key!r}] == {value!r}")
    if options.condition_key not in adata.obs:
        raise OptionError(
            f"{where}: condition key {options.condition_key!r} not in obs (columns: {_columns(adata.obs)})",
            "condition_key",
            "COLUMN",
        )
    return np.flatnonzero(keep)


def _gene_names(adata: ad.AnnData, options: DataOptions, where: str) -> list[str]:
    """Readout gene names (``var_names`` or ``var[options.gene_key]``), made unique with a warning if they repeat."""
    if options.gene_key is None:
        return unique_gene_names([str(g) for g in adata.var_names], f"{where} var_names")
    if options.gene_key not in adata.var:
        raise InputError(f"{where}: gene key {options.gene_key!r} not in var (columns: {_columns(adata.var)})")
    return unique_gene_names([str(g) for g in adata.var[options.gene_key]], f"{where} var[{options.gene_key!r}]")


def _is_delta_file(adata: ad.AnnData, options: DataOptions) -> bool:
    if options.delta is not None:
        return options.delta
    return str(adata.uns.get("value", "")).startswith("delta_from_control")


def map_each(values: np.ndarray, func: Callable[[object], str]) -> np.ndarray:
    """``func`` of every value as an object array, computed once per distinct value."""
    codes, uniques = pd.factorize(values)
    return np.array([func(u) for u in uniques], dtype=object)[codes]


def spell_conditions(adata: ad.AnnData, rows: np.ndarray, options: DataOptions) -> np.ndarray:
    """``(len(rows),)`` conditions of ``adata``'s ``rows`` spelled the GEARS way
    (:func:`~scouter_local.conditions.spell_condition`)."""
    where = f"obs[{options.condition_key!r}]"
    return map_each(
        adata.obs[options.condition_key].to_numpy()[rows],
        lambda u: spell_condition(u, control=options.control, single_format=options.single_format, where=where),
    )


def _check_control(values: np.ndarray, options: DataOptions, where: str) -> None:
    """A one-line error when no value is ``options.control``, naming the control-like labels the file has."""
    labels = {str(v).strip() for v in pd.unique(values)}
    if options.control in labels:
        return
    likely = sorted(v for v in labels if v.lower().replace("_", "-") in _CONTROL_WORDS)
    problem = f"{where}: no control cells with value {options.control!r}"
    if likely:
        raise OptionError(
            f"{problem}; this file has {', '.join(map(repr, likely))}", "control", repr(likely[0]), sep=": "
        )
    raise OptionError(problem, "control", "LABEL (e.g. control, non-targeting)")


def numeric_obs_column(obs: pd.DataFrame, key: str, *, where: str, parameter: str) -> pd.Series:
    """``obs[key]``, checked to exist and be numeric (the option is named in errors as ``parameter``)."""
    if key not in obs:
        raise InputError(f"{where}: {parameter}={key!r} not in obs (columns: {_columns(obs)})")
    column = obs[key]
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        raise InputError(
            f"{where}: obs[{key!r}] is not numeric ({column.dtype}); {parameter} needs a number per row, "
            "e.g. signal_to_noise"
        )
    return column


def condition_means(column: pd.Series, rows: np.ndarray, conditions: np.ndarray) -> dict[str, float]:
    """Mean of the non-missing values of ``column`` at file ``rows`` per condition (``conditions[i]`` is that of
    ``rows[i]``); NaN where all are missing."""
    values = pd.Series(column.to_numpy(dtype=np.float64, na_value=np.nan)[rows])
    means = values.groupby(np.asarray(conditions, dtype=object), sort=False).mean()
    return {str(c): float(v) for c, v in means.items()}


def read_obs_column(path: str | os.PathLike, key: str, *, parameter: str = "strong_key") -> pd.DataFrame:
    """``obs`` of the h5ad ``path`` (read backed: no expression loaded), checked to hold the numeric column ``key``
    (named in errors as ``parameter``)."""
    path = Path(path)
    backed = open_h5ad(path, backed=True)
    obs = backed.obs
    backed.file.close()
    numeric_obs_column(obs, key, where=str(path), parameter=parameter)
    return obs


def obs_condition_values(path: str | os.PathLike, key: str, data: PerturbationData) -> dict[str, float]:
    """Mean of the numeric column ``obs[key]`` of ``path`` per perturbed condition of ``data``.

    Only ``obs`` is read (backed). ``data.rows`` (the file rows kept by :func:`prepare_data`) ties each row to its
    condition as ``data`` spells it, after subsetting and renaming by the resolver (old symbols, Ensembl ids).

    Returns
    -------
    Perturbed condition → mean of its non-missing values (NaN when all are missing).
    """
    return condition_values(read_obs_column(path, key), key, data, where=str(path))


def condition_values(obs: pd.DataFrame, key: str, data: PerturbationData, *, where: str) -> dict[str, float]:
    """Mean of the numeric column ``obs[key]`` per perturbed condition of ``data``, ``obs`` being that of the file
    (or AnnData) ``data`` was read from, all its rows (``where`` names it in errors)."""
    if len(data.rows) and int(data.rows.max()) >= len(obs):
        raise InputError(
            f"{where}: has {len(obs)} rows but the data read from {data.source.get('path')} has row "
            f"{int(data.rows.max())}; pass the same file"
        )
    means = condition_means(obs[key], data.rows, data.conditions)
    return {c: means[c] for c in data.perturbations}


def perturbation_data(
    adata: ad.AnnData, options: DataOptions = DataOptions(), *, path: str | os.PathLike | None = None
) -> PerturbationData:
    """Conditions, per-condition statistics and DE genes of a perturbation screen held in an AnnData.

    ``adata.X`` is read in chunks (dense, sparse or backed); nothing is copied or written.

    Parameters
    ----------
    adata
        ``(n_cells, n_genes)`` expression (or ``(n_perturbations, n_genes)`` pseudo-bulk deltas) with the condition
        in ``obs[options.condition_key]``.
    options
        Column names and spellings of this screen (see :class:`DataOptions` and :data:`PRESETS`).
    path
        The h5ad file ``adata`` was read from, recorded so that a saved model can read it again.

    Returns
    -------
    :class:`PerturbationData` with conditions spelled ``ctrl`` / ``A+ctrl`` / ``A+B``; statistics, DE genes and
    nonzero genes per condition filled; ``excluded`` lists conditions left out by ``min_cells``.

    Examples
    --------
    >>> import anndata as ad
    >>> adata = ad.read_h5ad(find_data_dir() / PRESETS["norman"].file)
    >>> data = perturbation_data(adata, PRESETS["norman"].options)
    >>> len(data.perturbations), data.n_genes, data.perturbations[:2]
    (33, 500, ['KLF1+MAP2K6', 'CEBPE+RUNX1T1'])
    """
    check_anndata(adata)
    check_type(options, DataOptions, "options", "a DataOptions (e.g. DataOptions(control='control'))")
    label = str(path) if path is not None else "adata"
    check_has_genes(adata, label)
    rows = _selected_rows(adata, options, label)
    is_delta = _is_delta_file(adata, options)
    where = f"{label} obs[{options.condition_key!r}]"
    if not is_delta:  # before spelling, so a wrong control label is named first
        _check_control(adata.obs[options.condition_key].to_numpy()[rows], options, where)
    conditions = spell_conditions(adata, rows, options)
    genes = _gene_names(adata, options, label)
    if is_delta and (conditions == CTRL).any():
        raise InputError(f"{where}: delta file has control rows {options.control!r}; deltas need no control")

    counts = pd.Series(conditions).value_counts()
    excluded: dict[str, str] = {}
    min_cells = 1 if is_delta else 2
    small = counts[counts < (options.min_cells or min_cells)]
    if len(small):
        if options.min_cells is None:
            c, n = small.index[0], int(small.iloc[0])
            raise OptionError(
                f"{where}: condition {c!r} has {n} cell(s), at least {min_cells} needed",
                "min_cells",
                "N to leave such conditions out",
            )
        for c, n in small.items():
            excluded[str(c)] = f"only {int(n)} cell(s), fewer than min_cells={options.min_cells}"
        keep = ~np.isin(conditions, list(small.index))
        rows, conditions = rows[keep], conditions[keep]
        if not is_delta and not (conditions == CTRL).any():
            raise InputError(f"{where}: control has fewer than min_cells={options.min_cells} cells")
    check_conditions(conditions, where)

    cells = CellMatrix(adata.X)
    if options.normalize:
        totals = cells.row_totals(rows)
        cells = CellMatrix(adata.X, target_sum=float(np.median(totals[totals > 0])) if (totals > 0).any() else 1.0)
    elif not is_delta:
        head = cells.dense(rows[:100])
        if head.size and float(head.max()) > 50 and np.allclose(head, np.round(head)):
            warnings.warn(
                f"{where}: values look like raw counts; pass normalize=True to log1p-normalise them", stacklevel=2
            )

    noise = {}
    if options.noise_key:
        column = numeric_obs_column(adata.obs, options.noise_key, where=label, parameter="noise_key")
        noise = {c: v for c, v in condition_means(column, rows, conditions).items() if c != CTRL}
    stats = condition_stats(cells, rows, conditions, desc=f"reading {Path(path).name if path else 'adata'}")
    check_values(stats, label)
    de, nonzero = compute_de_genes(stats, genes, is_delta=is_delta)
    return PerturbationData(
        cells=cells,
        rows=rows,
        conditions=conditions,
        stats=stats,
        genes=genes,
        is_delta=is_delta,
        de_genes=de,
        nonzero_genes=nonzero,
        excluded=excluded,
        noise=noise,
        source={"path": str(Path(path).resolve()) if path is not None else None, "options": options.to_json()},
    )


def read_perturbation_data(
    path: str | os.PathLike, options: DataOptions = DataOptions(), *, backed: bool | None = None
) -> PerturbationData:
    """:func:`perturbation_data` of an h5ad file, read backed (``X`` streamed from disk, memory bounded whatever
    the number of cells) when ``backed`` or, by default, when the file is larger than :data:`BACKED_BYTES`."""
    check_type(path, (str, os.PathLike), "path", "an h5ad file's path")
    return perturbation_data(open_h5ad(path, backed), options, path=Path(path))
