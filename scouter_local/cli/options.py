"""Options and helpers shared by the commands: how to read a perturbation file, the shuffled control, the ``strong``
group, seeds, epochs; progress on stderr."""

from __future__ import annotations

import logging
import sys

import click

from gene_corpus.errors import InputError

SPLIT_HELP = "scouter (random condition split), simulation (GEARS), none (all train) or a split JSON file"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a message is logged (tests and notebooks swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def log_to_stderr() -> None:
    """Show per-epoch progress (``scouter_local`` INFO logs) on stderr."""
    logger = logging.getLogger("scouter_local")
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def data_options(f):
    """Options saying how to read a perturbation file (shared by train and benchmark)."""
    decorators = [
        click.option("--condition-key", default="condition", show_default=True, help="obs column with the condition."),
        click.option("--control", default="ctrl", show_default=True, help="Value marking control cells."),
        click.option(
            "--single-format",
            type=click.Choice(["gears", "bare"]),
            default="gears",
            show_default=True,
            help="Singles spelled 'A+ctrl' (gears) or 'A' (bare).",
        ),
        click.option("--subset", multiple=True, metavar="KEY=VALUE", help="Keep cells with obs[KEY] == VALUE."),
        click.option("--gene-key", default=None, help="var column with gene names (default: var_names)."),
        click.option(
            "--delta/--no-delta",
            default=None,
            help="Rows are pseudo-bulk deltas from control (default: read uns['value']).",
        ),
        click.option("--normalize", is_flag=True, help="normalize_total + log1p raw counts first."),
        click.option(
            "--min-cells",
            type=int,
            default=None,
            help="Leave out conditions with fewer cells (default: such a condition is an error).",
        ),
        click.option(
            "--noise-key",
            default=None,
            metavar="COLUMN",
            help="Numeric obs column with each row's signal-to-noise ratio (effect energy / expected noise "
            "energy), for pseudo-bulk files: weighs gene_delta's cross-validation and gives the "
            "benchmark's noise ceiling (single cells need none).",
        ),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def data_options_of(condition_key, control, single_format, subset, gene_key, delta, normalize, min_cells, noise_key):
    from scouter_local.data.options import DataOptions, parse_subset

    return DataOptions(
        condition_key=condition_key,
        control=control,
        single_format=single_format,
        subset=parse_subset(subset),
        gene_key=gene_key,
        delta=delta,
        normalize=normalize,
        min_cells=min_cells,
        noise_key=noise_key,
    )


shuffles_option = click.option(
    "--shuffles",
    type=int,
    default=5,
    show_default=True,
    help="Row-permuted copies of each embedding set fitted beside every embedding-using method (the control that "
    "says whether the embeddings carry signal); 0 turns it off.",
)


def strong_options(f):
    """``--strong-key``/``--strong-above``: the extra group ``strong``."""
    decorators = [
        click.option(
            "--strong-key",
            default=None,
            metavar="COLUMN",
            help="Numeric obs column; conditions whose mean value exceeds --strong-above form the extra "
            "group 'strong' (e.g. signal_to_noise).",
        ),
        click.option(
            "--strong-above",
            type=float,
            default=None,
            metavar="X",
            help="Threshold of --strong-key (strictly greater), e.g. 1.1.",
        ),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def strong_targets(strong_key: str | None, strong_above: float | None):
    """The ``strong`` rule of the two options, or ``None``; one given without the other is an error."""
    from scouter_local.evaluation.strong import StrongTargets

    if (strong_key is None) != (strong_above is None):
        raise InputError(
            "`strong_key` and `strong_above` go together, e.g. strong_key=signal_to_noise strong_above=1.1"
        )
    return StrongTargets(strong_key, strong_above) if strong_key is not None else None


seeds_option = click.option(
    "--seeds",
    default="1-2",
    show_default=True,
    help="Seeds of the Scouter condition splits: a range '1-3' or a list '1,3,7'.",
)

epochs_option = click.option("--epochs", type=int, default=None, help="Scouter: maximum epochs (default 40).")


def split_list(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]
