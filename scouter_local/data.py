"""Perturbation data: AnnData → conditions, control cells, DE genes, splits; genes resolved to embedding rows.

Conditions follow the GEARS/Scouter convention: ``ctrl``, ``A+ctrl`` (single) and ``A+B`` (combination, genes
sorted). Other layouts are read by explicit :class:`DataOptions` (``control="control"``, ``single_format="bare"``,
``condition_key="target"``, ``delta=True`` …), never by guessing. Pseudo-bulk delta files (one row per
perturbation, values = change from control) have no control cells: their control is the zero vector.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

import anndata as ad
import numpy as np
import pandas as pd

from gene_corpus.atomic import write_json_atomic
from gene_corpus.errors import InputError
from gene_corpus.gene_lists import name_some
from scouter_local.cells import CellMatrix, ConditionStats, condition_stats
from scouter_local.conditions import CTRL, condition_of, genes_in, genes_of, is_single, spell_condition
from scouter_local.embedding_set import EmbeddingSet

N_TOP_DE = 20
SPLIT_KINDS = ("scouter", "simulation", "none")
SUBGROUPS = ("single", "single_seen", "combo_seen0", "combo_seen1", "combo_seen2")
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


@dataclass(frozen=True)
class DataOptions:
    """How to read one perturbation file; saved with every model so evaluation replays it.

    Attributes
    ----------
    condition_key
        ``obs`` column holding the condition (``condition``, ``target``, ``target_ensembl`` …).
    control
        Value of ``condition_key`` that marks control cells (``ctrl``, ``control``, ``non-targeting``).
    single_format
        ``gears``: singles are spelled ``A+ctrl``; ``bare``: singles are spelled ``A``.
    subset
        Keep only rows with ``obs[key] == value`` for each item.
    gene_key
        ``var`` column with gene names; ``None`` uses ``var_names``.
    delta
        Rows are pseudo-bulk deltas from control; ``None`` reads ``uns['value']`` (``delta_from_control…``).
    normalize
        Library-size normalise and log1p raw counts first (scanpy ``normalize_total`` + ``log1p``).
    min_cells
        ``None``: a condition with fewer than 2 cells is an error; ``N``: conditions with fewer than ``N``
        cells are left out (listed in ``excluded``).
    noise_key
        Numeric ``obs`` column with each row's signal-to-noise ratio (observed effect energy over expected noise
        energy, e.g. ``signal_to_noise`` of the Replogle file): how reliable each pseudo-bulk row is (``gene_delta``
        weighs its cross-validation by it; the benchmark's noise ceiling uses it). Single cells need none.
    """

    condition_key: str = "condition"
    control: str = CTRL
    single_format: str = "gears"
    subset: tuple[tuple[str, str], ...] = ()
    gene_key: str | None = None
    delta: bool | None = None
    normalize: bool = False
    min_cells: int | None = None
    noise_key: str | None = None

    def to_json(self) -> dict:
        return {**asdict(self), "subset": [list(kv) for kv in self.subset]}

    @classmethod
    def from_json(cls, d: dict) -> "DataOptions":
        return cls(**{**d, "subset": tuple(tuple(kv) for kv in d.get("subset", ()))})

    def to_cli(self) -> list[str]:
        """The command-line options that read a file this way (those that differ from the defaults).

        >>> PRESETS["norman"].options.to_cli()
        ['--control', 'control', '--single-format', 'bare', '--subset', 'dataset=norman19']
        """
        args: list[str] = []
        for name, value in asdict(self).items():
            if value == getattr(DataOptions, name) or value is None:
                continue
            flag = "--" + name.replace("_", "-")
            if name == "subset":
                args += [a for key, val in self.subset for a in (flag, f"{key}={val}")]
            elif isinstance(value, bool):
                args.append(flag if value else f"--no-{name.replace('_', '-')}")
            else:
                args += [flag, str(value)]
        return args


@dataclass
class PerturbationData:
    """Control and perturbed cells (or pseudo-bulk deltas) of one file, with per-condition statistics.

    The expression stays where it is (in memory, or backed in the h5ad file) and is read in chunks; everything
    summarised per condition (means, variances, DE genes) is computed once by :func:`perturbation_data`.

    Attributes
    ----------
    cells
        The file's ``(n_file_rows, n_genes)`` expression (or deltas), read through :class:`CellMatrix`.
    rows
        ``(n_obs,)`` sorted file rows that belong to this data.
    conditions
        ``(n_obs,)`` condition of each row: ``ctrl``, ``A+ctrl`` or ``A+B``.
    stats
        Count, mean and variance per condition (:class:`ConditionStats`).
    genes
        Readout gene names, length ``n_genes``.
    is_delta
        Rows are deltas from control (no control rows; control is the zero vector).
    de_genes
        Condition → indices of its top-20 non-dropout DE genes, perturbed genes excluded.
    nonzero_genes
        Condition → indices of genes with a nonzero mean in that condition (the training loss uses them).
    excluded
        Condition (GEARS spelling, genes as written in the file) → why it was left out.
    gene_rows
        Current gene symbol → row of the embedding set (filled by :func:`resolve_genes`).
    source
        ``{"path": …, "options": …}`` of the file read.
    noise
        Condition → mean of ``obs[options.noise_key]`` over its rows (empty without a noise column).
    """

    cells: CellMatrix
    rows: np.ndarray
    conditions: np.ndarray
    stats: ConditionStats
    genes: list[str]
    is_delta: bool
    de_genes: dict[str, np.ndarray]
    nonzero_genes: dict[str, np.ndarray]
    excluded: dict[str, str] = field(default_factory=dict)
    gene_rows: dict[str, int] = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    noise: dict[str, float] = field(default_factory=dict)

    @property
    def n_genes(self) -> int:
        return self.cells.n_genes

    @property
    def n_obs(self) -> int:
        return len(self.rows)

    @property
    def perturbations(self) -> list[str]:
        """Perturbed conditions in order of first appearance (the order Scouter's split shuffles)."""
        return [c for c in pd.unique(self.conditions) if c != CTRL]

    def expression(self, positions: np.ndarray | slice = slice(None)) -> np.ndarray:
        """``(n, n_genes)`` dense rows at ``positions`` of this data (all by default) — for small data only."""
        return self.cells.dense(self.rows[positions])

    def sample_cells(self, condition: str, n: int, seed: int = 0) -> np.ndarray:
        """``(min(n, n_cells), n_genes)`` dense rows of ``condition``, a seeded sample when it has more than ``n``;
        one zero row for ``ctrl`` of delta data."""
        if self.is_delta and condition == CTRL:
            return np.zeros((1, self.n_genes), dtype=np.float32)
        rows = self.rows[self.conditions == condition]
        if len(rows) > n:
            rows = np.sort(np.random.RandomState(seed).choice(rows, n, replace=False))
        return self.cells.dense(rows)

    def control_mean(self) -> np.ndarray:
        """``(n_genes,)`` mean control profile (zeros for delta data)."""
        if self.is_delta:
            return np.zeros(self.n_genes, dtype=np.float32)
        return self.condition_mean(CTRL)

    def sampling_variance(self, condition: str) -> np.ndarray:
        """``(n_genes,)`` variance of the observed mean profile of ``condition`` (cells' variance / count); zeros for
        pseudo-bulk deltas, which keep no variance."""
        if self.is_delta:
            return np.zeros(self.n_genes)
        i = self.stats.index(condition)
        return self.stats.var[i].astype(np.float64) / self.stats.n[i]

    def reliability(self, conditions: Sequence[str]) -> np.ndarray:
        """``(len(conditions),)`` share of each condition's observed change from control that is signal, in [0, 1]:
        ``1 - 1/snr`` from the noise column; for single cells ``1 - Σ sampling variance (condition and control) /
        ||observed change||²``; 1 for pseudo-bulk rows without a noise column."""
        out = np.ones(len(conditions))
        if not self.noise and not self.is_delta:
            control, control_variance = self.control_mean(), self.sampling_variance(CTRL)
        for i, c in enumerate(conditions):
            if self.noise:
                snr = self.noise.get(c, np.nan)
                out[i] = 1.0 - 1.0 / snr if snr > 0 else 0.0
            elif not self.is_delta:
                change = self.condition_mean(c).astype(np.float64) - control
                energy = float(change @ change)
                noise = float(np.nansum(self.sampling_variance(c) + control_variance))
                out[i] = 1.0 - noise / energy if energy > 0 else 0.0
        return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)

    def mean_profile(self) -> np.ndarray:
        """``(n_genes,)`` mean of the perturbed conditions' mean profiles (what ``train_mean`` predicts)."""
        return np.mean([self.condition_mean(c) for c in self.perturbations], axis=0).astype(np.float32)

    def condition_mean(self, condition: str) -> np.ndarray:
        """``(n_genes,)`` mean observed profile of one condition."""
        if condition not in self.stats:
            raise InputError(f"condition {condition!r} has no cells in {self.source.get('path', 'the data')}")
        return self.stats.mean[self.stats.index(condition)].astype(np.float32)

    def subset(self, conditions: Sequence[str]) -> "PerturbationData":
        """The rows of ``conditions`` plus all control rows (annotations kept)."""
        keep = np.isin(self.conditions, list(conditions)) | (self.conditions == CTRL)
        kept = self.conditions[keep]
        return replace(
            self, rows=self.rows[keep], conditions=kept, stats=self.stats.renamed({c: c for c in pd.unique(kept)})
        )


class Resolution(Protocol):
    query: str
    entrez_id: int | None
    symbol: str | None
    how: str
    candidates: list


Resolver = Callable[[list[str]], list[Resolution]]


# ---------------------------------------------------------------------------------------------- reading


def parse_subset(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``["dataset=norman19"]`` → ``(("dataset", "norman19"),)``; a malformed item is an :class:`InputError`."""
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"subset item {item!r}: expected KEY=VALUE, e.g. dataset=norman19")
        out.append((key, value))
    return tuple(out)


def _open_anndata(path: Path, backed: bool | None) -> ad.AnnData:
    """``path`` read whole, or backed (``X`` stays on disk) when ``backed`` or, by default, above
    :data:`BACKED_BYTES`."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if backed is None:
        backed = path.stat().st_size > BACKED_BYTES
    try:
        return ad.read_h5ad(path, backed="r" if backed else None)
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{path}: not a readable h5ad file ({exc})") from exc


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
        raise InputError(
            f"{where}: condition key {options.condition_key!r} not in obs (columns: "
            f"{_columns(adata.obs)}); pass condition_key=COLUMN"
        )
    return np.flatnonzero(keep)


def _gene_names(adata: ad.AnnData, options: DataOptions, where: str) -> list[str]:
    if options.gene_key is None:
        return [str(g) for g in adata.var_names]
    if options.gene_key not in adata.var:
        raise InputError(f"{where}: gene key {options.gene_key!r} not in var (columns: {_columns(adata.var)})")
    return [str(g) for g in adata.var[options.gene_key]]


def _is_delta_file(adata: ad.AnnData, options: DataOptions) -> bool:
    if options.delta is not None:
        return options.delta
    return str(adata.uns.get("value", "")).startswith("delta_from_control")


def _map_each(values: np.ndarray, func: Callable[[object], str]) -> np.ndarray:
    """``func`` of every value as an object array, computed once per distinct value."""
    codes, uniques = pd.factorize(values)
    return np.array([func(u) for u in uniques], dtype=object)[codes]


def spell_conditions(adata: ad.AnnData, rows: np.ndarray, options: DataOptions) -> np.ndarray:
    """``(len(rows),)`` conditions of ``adata``'s ``rows`` spelled the GEARS way
    (:func:`~scouter_local.conditions.spell_condition`)."""
    where = f"obs[{options.condition_key!r}]"
    return _map_each(
        adata.obs[options.condition_key].to_numpy()[rows],
        lambda u: spell_condition(u, control=options.control, single_format=options.single_format, where=where),
    )


def _check_control(values: np.ndarray, options: DataOptions, where: str) -> None:
    """A one-line error when no value is ``options.control``, naming the control-like labels the file has."""
    labels = {str(v).strip() for v in pd.unique(values)}
    if options.control in labels:
        return
    likely = sorted(v for v in labels if v.lower().replace("_", "-") in _CONTROL_WORDS)
    hint = (
        f"this file has {', '.join(map(repr, likely))}: pass control={likely[0]!r}"
        if likely
        else "pass control=LABEL (e.g. control, non-targeting)"
    )
    raise InputError(f"{where}: no control cells with value {options.control!r}; {hint}")


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
    label = str(path) if path is not None else "adata"
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
            raise InputError(
                f"{where}: condition {c!r} has {n} cell(s), at least {min_cells} needed; pass "
                "min_cells=N to leave such conditions out"
            )
        for c, n in small.items():
            excluded[str(c)] = f"only {int(n)} cell(s), fewer than min_cells={options.min_cells}"
        keep = ~np.isin(conditions, list(small.index))
        rows, conditions = rows[keep], conditions[keep]
        if not is_delta and not (conditions == CTRL).any():
            raise InputError(f"{where}: control has fewer than min_cells={options.min_cells} cells")

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
    path = Path(path)
    return perturbation_data(_open_anndata(path, backed), options, path=path)


def _perturbed_gene_idx(condition: str, genes: list[str]) -> np.ndarray:
    names = set(genes_of(condition))
    return np.array([i for i, g in enumerate(genes) if g in names], dtype=np.int64)


def compute_de_genes(
    stats: ConditionStats, genes: list[str], *, is_delta: bool
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Top-20 DE genes and nonzero genes of every perturbed condition, from per-condition statistics.

    Single cells: Welch's t-test of each condition against ``ctrl`` over all genes — scanpy's
    ``rank_genes_groups(method="t-test", reference="ctrl", rankby_abs=True)``: the same statistic from the same
    means and ``ddof=1`` variances, NaN scores set to 0 — then the first 20 non-dropout genes (nonzero in the
    condition, or zero in both condition and control), as Scouter/GEARS. Deltas: the 20 genes with the largest
    ``|delta|``. Perturbed genes are then removed from the top 20.

    Returns
    -------
    ``(de_genes, nonzero_genes)``: condition → sorted-by-rank ``int64`` gene indices, condition → gene indices.
    """
    perts = [c for c in stats.names if c != CTRL]
    idx = [stats.index(c) for c in perts]
    means = stats.mean[idx]
    nonzero = {c: np.flatnonzero(means[i] != 0) for i, c in enumerate(perts)}
    if is_delta:
        score = np.abs(means)
        non_dropout = np.ones_like(means, dtype=bool)
    else:
        from scipy.stats import ttest_ind_from_stats

        ctrl = stats.index(CTRL)
        with np.errstate(invalid="ignore", divide="ignore"):
            score, _ = ttest_ind_from_stats(
                means,
                np.sqrt(stats.var[idx]),
                stats.n[idx][:, None],
                stats.mean[ctrl],
                np.sqrt(stats.var[ctrl]),
                stats.n[ctrl],
                equal_var=False,
            )
        score = np.abs(np.nan_to_num(score, nan=0.0))
        non_dropout = (means != 0) | (stats.mean[ctrl] == 0)
    de: dict[str, np.ndarray] = {}
    for i, c in enumerate(perts):
        ranked = np.argsort(-score[i], kind="stable")
        top = ranked[non_dropout[i][ranked]][:N_TOP_DE]
        de[c] = top[~np.isin(top, _perturbed_gene_idx(c, genes))]
    return de, nonzero


# ---------------------------------------------------------------------------------------------- genes → embeddings


#: How to give a left-out gene a vector, by how the set was made.
_KEEP_HINT = {
    "embed": "embed its genes into set {set!r}, after importing a text for genes that have none: see scouter-local "
    "corpus show GENE",
    "import": "add its genes to the file imported as set {set!r} and import it again",
    "go": "import GO annotations of its genes (gene2go) and build set {set!r} again with scouter-local embeddings go",
    "combine": "give its genes a vector in every set combined into set {set!r}, then combine them again",
}


def _keep_hint(embeddings: EmbeddingSet) -> str:
    return _KEEP_HINT.get(embeddings.spec.get("source"), _KEEP_HINT["embed"]).format(set=embeddings.name)


def resolve_genes(data: PerturbationData, embeddings: EmbeddingSet, resolve: Resolver) -> PerturbationData:
    """Map each perturbed gene to a row of ``embeddings`` and respell conditions with current symbols.

    Each gene goes through ``resolve`` (the corpus resolver); its row is found by Entrez id, then by current
    symbol, then by the symbol as written. Conditions with a gene that has no row are left out, listed in
    ``excluded`` with the reason, and announced with a warning.

    Parameters
    ----------
    data
        Data read by :func:`perturbation_data`.
    embeddings
        The embedding set the model will use.
    resolve
        ``Corpus.resolve``: list of symbols/ids → resolutions with ``entrez_id``, ``symbol``, ``how``.

    Returns
    -------
    A new :class:`PerturbationData` whose ``gene_rows`` maps current symbol → embedding row.
    """
    tokens = genes_in(data.perturbations)
    by_entrez = {int(e): i for i, e in enumerate(embeddings.entrez_ids) if int(e) >= 0}
    by_symbol = embeddings.rows()
    canonical: dict[str, str] = {}
    gene_rows: dict[str, int] = {}
    missing: dict[str, str] = {}
    for token, res in zip(tokens, resolve(tokens)):
        row = None
        symbol = res.symbol if res.how not in ("unknown", "ambiguous") and res.symbol else token
        if res.how not in ("unknown", "ambiguous") and res.entrez_id is not None:
            row = by_entrez.get(int(res.entrez_id))
        if row is None:
            row = by_symbol.get(symbol, by_symbol.get(token))
        if row is None:
            if res.how == "unknown":
                missing[token] = f"gene {token} unknown to the corpus"
            elif res.how == "ambiguous":
                cands = ", ".join(str(c) for c in (res.candidates or [])[:5])
                missing[token] = f"gene {token} is ambiguous in the corpus ({cands})"
            else:
                named = token if symbol == token else f"{token} (now {symbol})"
                missing[token] = f"gene {named} has no embedding in set {embeddings.name!r}"
            continue
        canonical[token] = symbol
        gene_rows[symbol] = row

    excluded = dict(data.excluded)
    rename: dict[str, str] = {CTRL: CTRL}
    for c in data.perturbations:
        genes = genes_of(c)
        lost = [missing[g] for g in genes if g in missing]
        if lost:
            excluded[c] = "; ".join(lost)
            continue
        new = [canonical[g] for g in genes]
        rename[c] = condition_of(new)
    dropped = [c for c in data.perturbations if c not in rename]
    if dropped:
        warnings.warn(
            f"{len(dropped)} condition(s) left out: {name_some([f'{c}: {excluded[c]}' for c in dropped])} "
            f"(all are listed under 'excluded' in the model manifest and the evaluate JSON; to keep a "
            f"condition, {_keep_hint(embeddings)})",
            stacklevel=2,
        )
    if len(set(rename.values())) < len(rename):
        seen: dict[str, str] = {}
        for old, new in rename.items():
            if new in seen:
                raise InputError(f"conditions {seen[new]!r} and {old!r} name the same genes ({new}); merge them first")
            seen[new] = old
    if len(rename) == 1:
        raise InputError(
            f"no condition of {data.source.get('path', 'the data')} has all its genes in set {embeddings.name!r}"
        )

    keep = np.isin(data.conditions, list(rename))
    conditions = _map_each(data.conditions[keep], rename.__getitem__)
    de = {}
    for old, new in rename.items():
        if old == CTRL:
            continue
        extra = _perturbed_gene_idx(new, data.genes)
        de[new] = data.de_genes[old][~np.isin(data.de_genes[old], extra)]
    nonzero = {rename[k]: v for k, v in data.nonzero_genes.items() if k in rename}
    noise = {rename[k]: v for k, v in data.noise.items() if k in rename}
    return replace(
        data,
        rows=data.rows[keep],
        conditions=conditions,
        stats=data.stats.renamed(rename),
        de_genes=de,
        nonzero_genes=nonzero,
        excluded=excluded,
        gene_rows=gene_rows,
        noise=noise,
    )


# ---------------------------------------------------------------------------------------------- splits


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


def scouter_split(conditions: list[str], *, test_ratio: float = 0.2, val_ratio: float = 0.1, seed: int = 24) -> Split:
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
    conditions: list[str], *, seed: int = 1, train_gene_frac: float = 0.75, combo_seen2_train_frac: float = 0.75
) -> Split:
    """GEARS's ``simulation`` split: unseen genes' singles and combos with 0/1 seen genes go to test, plus a
    ``1 - combo_seen2_train_frac`` share of combos with both genes seen; val is drawn the same way (0.9/0.9)."""
    train, test = _simulation_part(conditions, train_gene_frac, combo_seen2_train_frac, seed)
    train, val = _simulation_part(train, 0.9, 0.9, seed)
    return Split(train=train, val=val, test=test, kind="simulation", seed=seed)


def make_split(
    data: PerturbationData, kind: str, *, seed: int = 24, test_ratio: float = 0.2, val_ratio: float = 0.1
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


# ---------------------------------------------------------------------------------------------- corpus + store


def load_embeddings(db: str | os.PathLike, set_name: str) -> EmbeddingSet:
    """The embedding set ``set_name`` stored in the corpus database ``db``."""
    from scouter_local.embedding_store import load_embedding_set

    if not Path(db).exists():
        raise InputError(f"db={str(db)!r}: no such database; build it with scouter-local corpus import")
    return load_embedding_set(db, set_name)


def prepare_data(
    source: ad.AnnData | str | os.PathLike,
    options: DataOptions,
    db: str | os.PathLike,
    embeddings: EmbeddingSet,
    *,
    backed: bool | None = None,
) -> PerturbationData:
    """Read a screen (an AnnData in memory, or an h5ad file: see :func:`perturbation_data`) and resolve its
    perturbed genes through the corpus in ``db`` onto ``embeddings``; ``db`` is recorded in ``source``."""
    from gene_corpus.corpus import Corpus

    if isinstance(source, ad.AnnData):
        data = perturbation_data(source, options)
    else:
        data = read_perturbation_data(source, options, backed=backed)
    data.source["db"] = str(Path(db).resolve())
    with Corpus.open(db, read_only=True) as corpus:
        return resolve_genes(data, embeddings, corpus.resolve)


def condition_rows(condition: str, gene_rows: Mapping[str, int], embeddings: EmbeddingSet) -> list[int]:
    """Embedding rows of the genes of ``condition``: from ``gene_rows`` (the resolver's map), else by symbol.

    A gene without a row is an :class:`InputError` that says how to get one.
    """
    rows, by_symbol = [], None
    for g in genes_of(condition):
        row = gene_rows.get(g)
        if row is None:
            by_symbol = by_symbol or embeddings.rows()
            row = by_symbol.get(g)
        if row is None:
            raise InputError(
                f"gene {g} (condition {condition!r}) has no embedding in set {embeddings.name!r}; "
                "resolve it to a current symbol (scouter-local corpus resolve) or embed it first"
            )
        rows.append(int(row))
    if not rows:
        raise InputError(f"condition {condition!r} names no gene; expected 'A+ctrl' or 'A+B'")
    return rows


def condition_vectors(conditions: Sequence[str], gene_rows: Mapping[str, int], embeddings: EmbeddingSet) -> np.ndarray:
    """``(n_conditions, dim)`` float32 sum of each condition's genes' embeddings (rows by :func:`condition_rows`)."""
    vectors = embeddings.vectors
    return np.stack([vectors[condition_rows(c, gene_rows, embeddings)].sum(axis=0) for c in conditions]).astype(
        np.float32
    )


# ---------------------------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class Preset:
    """A screen of the data folder and how to read it.

    Attributes
    ----------
    file
        Path relative to the data folder.
    options
        Its :class:`DataOptions`.
    strong_key
        Numeric ``obs`` column telling strong perturbations from noise (``None``: none).
    """

    file: str
    options: DataOptions
    strong_key: str | None = None

    def path(self, data_dir: str | os.PathLike | None = None) -> Path:
        """The file in ``data_dir`` (default :func:`find_data_dir`)."""
        return Path(data_dir if data_dir is not None else find_data_dir()) / self.file


#: The real screens of ``../shared/data`` (see its MANIFEST.md) and the options their layouts need.
PRESETS = {
    "norman": Preset(
        "perturbseq/norman2019_mcfaline2023_subset.h5ad",
        DataOptions(
            condition_key="condition", control="control", single_format="bare", subset=(("dataset", "norman19"),)
        ),
    ),
    "replogle": Preset(
        "perturbseq/replogle2022_k562_pseudobulk_delta.h5ad",
        DataOptions(condition_key="target_ensembl", single_format="bare"),
        strong_key="signal_to_noise",
    ),
    "papalexi": Preset(
        "perturbseq/papalexi2021_thp1_subset.h5ad",
        DataOptions(condition_key="target", control="non-targeting", single_format="bare", normalize=True),
    ),
}
#: Files a data folder must hold for the corpus and the demo.
REQUIRED_FILES = (
    "gene_ids/gene_info_human.tsv.gz",
    "gene_ids/gene_aliases_human.tsv.gz",
    "gene_text/refseq_summaries_human.tsv.gz",
    PRESETS["norman"].file,
)
#: Files of the data folder that give every gene of the shared screens an id, its old symbols (HGNC: KIAA1804 is
#: MAP3K21) and a document (what the tests and benchmarks import into their corpora).
CORPUS_FILES = (
    "gene_ids/gene_info_human.tsv.gz",
    "gene_ids/gene_aliases_human.tsv.gz",
    "gene_ids/hgnc_genes_human.parquet",
    "gene_text/refseq_summaries_human.tsv.gz",
    "gene_text/genept_ncbi_uniprot_perturbed_genes.json",
)


def find_data_dir(given: str | os.PathLike | None = None) -> Path:
    """The data folder: ``given``, else ``$SCOUTER_DATA_DIR``, else ``../shared/data`` from the current directory or
    the repository root.

    Raises
    ------
    InputError
        ``given`` lacks a required file, or no default folder exists.
    """
    given = given if given is not None else os.environ.get("SCOUTER_DATA_DIR")
    if given is not None:
        path = Path(given).expanduser()
        missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
        if missing:
            raise InputError(
                f"data_dir={str(path)!r}: {missing[0]} is missing; pass the folder holding gene_ids/, "
                "gene_text/, go/ and perturbseq/ (the project's ../shared/data)"
            )
        return path.resolve()
    root = Path(__file__).resolve().parents[1]
    for candidate in (Path.cwd() / ".." / "shared" / "data", root.parent / "shared" / "data"):
        if all((candidate / f).is_file() for f in REQUIRED_FILES):
            return candidate.resolve()
    raise InputError(
        "no data folder at ../shared/data (from here or from the repository root); pass "
        "data_dir=DIR, the folder holding gene_ids/, gene_text/, go/ and perturbseq/"
    )
