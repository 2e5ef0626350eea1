"""How to read one perturbation file (:class:`DataOptions`), saved with every model so evaluation replays it.

Conditions follow the GEARS/Scouter convention: ``ctrl``, ``A+ctrl`` (single) and ``A+B`` (combination, genes
sorted). Other layouts are read by explicit options (``control='control'``, ``single_format='bare'``,
``condition_key='target'``, ``delta=True`` …), never by guessing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from gene_corpus.errors import InputError
from scouter_local.conditions import CTRL


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


def parse_subset(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``["dataset=norman19"]`` → ``(("dataset", "norman19"),)``; a malformed item is an :class:`InputError`."""
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"subset item {item!r}: expected KEY=VALUE, e.g. dataset=norman19")
        out.append((key, value))
    return tuple(out)
