"""``train``, ``predict``, ``evaluate`` and ``benchmark``: thin click commands over the library."""

from __future__ import annotations

import logging
import sys

import click

from gene_corpus.errors import InputError
from scouter_local.predictors import DEFAULT_METHOD

SPLIT_HELP = "scouter (random condition split), simulation (GEARS), none (all train) or a split JSON file"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a message is logged (tests and notebooks swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _log_to_stderr() -> None:
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


def _options(condition_key, control, single_format, subset, gene_key, delta, normalize, min_cells, noise_key):
    from scouter_local.data import DataOptions, parse_subset

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


@click.command("train")
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False), help="Perturbation h5ad.")
@click.option("--db", required=True, type=click.Path(dir_okay=False), help="Corpus database with the embeddings.")
@click.option("--set", "set_name", required=True, help="Embedding set name.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Model folder to write.")
@click.option(
    "--method",
    default=DEFAULT_METHOD,
    show_default=True,
    help="A method of the registry: gene_delta (default, best measured), scouter, or a baseline.",
)
@click.option("--split", default="scouter", show_default=True, help=SPLIT_HELP)
@click.option("--seed", type=int, default=24, show_default=True)
@click.option("--test-ratio", type=float, default=0.2, show_default=True)
@click.option("--val-ratio", type=float, default=0.1, show_default=True)
@click.option("--epochs", type=int, default=None, help="Scouter: maximum epochs (default 40).")
@click.option("--batch-size", type=int, default=None, help="Scouter: batch size (default 256).")
@click.option("--device", default=None, help="Scouter: auto (CUDA when present), cpu, cuda.")
@click.option("--overwrite", is_flag=True, help="Replace an existing model folder.")
@data_options
def train_cmd(
    data_path,
    db,
    set_name,
    out,
    method,
    split,
    seed,
    test_ratio,
    val_ratio,
    epochs,
    batch_size,
    device,
    overwrite,
    **opts,
):
    """Train a predictor and save it (manifest.json + model.pt + split.json) in --out.

    Example: scouter-local train --data norman.h5ad --db corpus.duckdb --set minilm --out m1
    --condition-key condition --control control --single-format bare --subset dataset=norman19 --seed 1
    """
    from scouter_local.data import load_embeddings, prepare_data
    from scouter_local.predictors import make_predictor
    from scouter_local.predictors.checkpoint import check_model_dir, save_model
    from scouter_local.runtime import launcher_rank
    from scouter_local.training import train

    _log_to_stderr()
    config = {k: v for k, v in {"epochs": epochs, "batch_size": batch_size, "device": device}.items() if v is not None}
    make_predictor(method, seed=seed, **config)  # unknown method or option: fail before any work
    check_model_dir(out, overwrite=overwrite)
    embeddings = load_embeddings(db, set_name)
    data = prepare_data(data_path, _options(**opts), db, embeddings)
    predictor = train(
        data, embeddings, method=method, split=split, seed=seed, test_ratio=test_ratio, val_ratio=val_ratio, **config
    )
    rank = launcher_rank()
    if rank is not None and rank[0] != 0:
        return  # one of several training processes (accelerate launch / torchrun): the first one saves
    save_model(predictor, out, overwrite=overwrite)
    the_split = predictor.split_
    click.echo(
        f"trained {method} on {len(the_split.train)} conditions (val {len(the_split.val)}, test "
        f"{len(the_split.test)}, left out {len(data.excluded)}) → {out}"
    )


@click.command("predict")
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False), help="Model folder.")
@click.option("--perturbation", multiple=True, help="Condition to predict, e.g. 'A+B' or 'A' (repeatable).")
@click.option("--data", "data_path", type=click.Path(dir_okay=False), help="Predict every condition of this h5ad.")
@click.option(
    "--db", default=None, type=click.Path(dir_okay=False), help="Corpus database (default: the training one)."
)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .csv or .h5ad.")
def predict_cmd(model_dir, perturbation, data_path, db, out):
    """Predict the mean expression profile of perturbations (rows: conditions, columns: readout genes).

    Example: scouter-local predict --model m1 --perturbation KLF1+MAP2K6 --perturbation IER5L --out pred.csv
    """
    from scouter_local.data import DataOptions, prepare_data
    from scouter_local.prediction import predict, write_predictions
    from scouter_local.predictors.checkpoint import load_model

    if bool(perturbation) == bool(data_path):
        raise InputError("pass either --perturbation (repeatable) or --data, not both or neither")
    predictor = load_model(model_dir, db=db)
    if data_path:
        source = predictor.data_source_
        data = prepare_data(data_path, DataOptions.from_json(source["options"]), source["db"], predictor.embeddings_)
        perturbation = data.perturbations
    predictions = predict(predictor, perturbation)
    write_predictions(predictions, out)
    click.echo(f"predicted {predictions.n_obs} condition(s) → {out}")
    if not data_path:
        from scouter_local.explain import explain_predictor, format_explanations

        click.echo(format_explanations(explain_predictor(predictor, list(predictions.obs["condition"]))))


@click.command("evaluate")
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False), help="Model folder.")
@click.option(
    "--data",
    "data_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Evaluate every condition of this h5ad (default: the saved split's test conditions).",
)
@click.option(
    "--db", default=None, type=click.Path(dir_okay=False), help="Corpus database (default: the training one)."
)
@click.option("--json", "json_out", required=True, type=click.Path(dir_okay=False), help="Result JSON (CSV beside it).")
@click.option("--plots", default=None, type=click.Path(file_okay=False), help="Folder for plots.")
def evaluate_cmd(model_dir, data_path, db, json_out, plots):
    """Evaluate a model (NormMSE, Pearson delta, direction accuracy) beside the baselines.

    Example: scouter-local evaluate --model m1 --json m1/eval.json --plots m1/plots
    """
    from scouter_local.evaluation import evaluate, write_report
    from scouter_local.plotting import write_evaluation_plots
    from scouter_local.predictors import BASELINES

    result = evaluate(model_dir, data_path, db=db, baselines=BASELINES)
    json_path, csv_path = write_report(result, json_out)
    if plots is not None:
        write_evaluation_plots(result, plots)
    overall = result.summary.loc["overall"]
    click.echo(
        f"{result.method}: {result.n} conditions, NormMSE mean {overall['normmse_mean']:.3f} median "
        f"{overall['normmse_median']:.3f} → {json_path}, {csv_path}"
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
    from scouter_local.evaluation import StrongTargets

    if (strong_key is None) != (strong_above is None):
        raise InputError(
            "`strong_key` and `strong_above` go together, e.g. strong_key=signal_to_noise strong_above=1.1"
        )
    return StrongTargets(strong_key, strong_above) if strong_key is not None else None


@click.command("benchmark")
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False), help="Perturbation h5ad.")
@click.option("--db", required=True, type=click.Path(dir_okay=False), help="Corpus database with the embeddings.")
@click.option("--set", "set_names", required=True, help="Embedding set name(s), comma-separated.")
@click.option(
    "--methods",
    default="gene_delta,scouter,no_change,train_mean,additive,ridge,knn",
    show_default=True,
    help="Comma-separated methods of the registry.",
)
@click.option("--seeds", default="1-5", show_default=True, help="Seeds: '1-5' or '1,3,7'.")
@click.option("--split", default="scouter", show_default=True, help=SPLIT_HELP)
@click.option("--test-ratio", type=float, default=0.2, show_default=True)
@click.option("--val-ratio", type=float, default=0.1, show_default=True)
@click.option("--epochs", type=int, default=None, help="Scouter: maximum epochs (default 40).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for results and plots.")
@shuffles_option
@strong_options
@data_options
def benchmark_cmd(
    data_path,
    db,
    set_names,
    methods,
    seeds,
    split,
    test_ratio,
    val_ratio,
    epochs,
    out,
    shuffles,
    strong_key,
    strong_above,
    **opts,
):
    """Train and evaluate methods × embedding sets × seeds; print the table, save JSON/CSV and plots in --out.

    Runs are separate processes: each Scouter (set, seed) has its own, while gene_delta and the baselines share one
    process per seed (their fit time is per method, their peak memory that of the shared process). Every
    embedding-using method is also fitted on --shuffles row-permuted copies of the set (the 'real vs shuffled'
    block: does the set carry signal here?). The 'ceiling' row is what a perfect predictor of each condition's
    true mean would score given its cells' noise. With --strong-key and --strong-above, the conditions whose obs
    value exceeds the threshold are also reported as the group 'strong'.

    Example: scouter-local benchmark --data norman.h5ad --db corpus.duckdb --set minilm --methods scouter,train_mean
    --seeds 1-5 --out bench --condition-key condition --control control --single-format bare --subset dataset=norman19

    Example: scouter-local benchmark --data replogle2022_k562_pseudobulk_delta.h5ad --db corpus.duckdb --set minilm
    --methods gene_delta,train_mean,ridge,knn --seeds 1-5 --out bench_k562 --condition-key target_ensembl
    --single-format bare --strong-key signal_to_noise --strong-above 1.1 --noise-key signal_to_noise
    """
    from scouter_local.benchmarking import parse_seeds, run_benchmark

    strong = strong_targets(strong_key, strong_above)
    _log_to_stderr()
    bench = run_benchmark(
        data_path,
        _options(**opts),
        db=db,
        set_names=[s for s in set_names.split(",") if s],
        methods=[m for m in methods.split(",") if m],
        seeds=parse_seeds(seeds),
        split=split,
        test_ratio=test_ratio,
        val_ratio=val_ratio,
        out=out,
        config={"epochs": epochs} if epochs else {},
        strong=strong,
        shuffles=shuffles,
    )
    click.echo(bench.table)


COMMANDS = [train_cmd, predict_cmd, evaluate_cmd, benchmark_cmd]
