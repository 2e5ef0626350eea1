"""``train``, ``predict`` and ``evaluate``: thin click commands over the library."""

from __future__ import annotations

import click

from gene_corpus.errors import InputError
from scouter_local.cli.options import SPLIT_HELP, data_options, data_options_of, log_to_stderr, strong_targets
from scouter_local.predictors import DEFAULT_METHOD
from scouter_local.runtime import DEFAULT_SEED


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
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True)
@click.option("--test-ratio", type=float, default=0.2, show_default=True)
@click.option("--val-ratio", type=float, default=0.1, show_default=True)
@click.option("--epochs", type=int, default=None, help="Scouter: maximum epochs (default 40).")
@click.option("--batch-size", type=int, default=None, help="Scouter: batch size (default 256).")
@click.option("--device", default=None, help="Scouter: auto (CUDA when present), cpu, cuda.")
@click.option("--overwrite", is_flag=True, help="Replace an existing model folder.")
@click.option(
    "--strong-key",
    default=None,
    metavar="COLUMN",
    help="Numeric obs column labelling which conditions had a detectable effect (with --strong-above), for the "
    "effect model trained beside the method (default: single cells are labelled by an E-test against control; "
    "pseudo-bulk files without a column get no effect model).",
)
@click.option(
    "--strong-above", type=float, default=None, metavar="X", help="Threshold of --strong-key (strictly greater)."
)
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
    strong_key,
    strong_above,
    **opts,
):
    """Train a predictor and save it (manifest.json + model.pt + split.json) in --out, with an effect model (the
    probability that perturbing a gene has a detectable effect; see rank) where the data have an effect label.

    Example: scouter-local train --data norman.h5ad --db corpus.duckdb --set minilm --out m1
    --condition-key condition --control control --single-format bare --subset dataset=norman19 --seed 1
    """
    from scouter_local.data.link import load_embeddings, prepare_data
    from scouter_local.data.read import read_obs_column
    from scouter_local.predictors import make_predictor
    from scouter_local.predictors.checkpoint import check_model_dir, save_model
    from scouter_local.predictors.training import train
    from scouter_local.runtime import launcher_rank

    log_to_stderr()
    config = {k: v for k, v in {"epochs": epochs, "batch_size": batch_size, "device": device}.items() if v is not None}
    make_predictor(method, seed=seed, **config)  # unknown method or option: fail before any work
    check_model_dir(out, overwrite=overwrite)
    if strong_targets(strong_key, strong_above) is not None:
        read_obs_column(data_path, strong_key)
    embeddings = load_embeddings(db, set_name)
    data = prepare_data(data_path, data_options_of(**opts), db, embeddings)
    predictor = train(
        data,
        embeddings,
        method=method,
        split=split,
        seed=seed,
        test_ratio=test_ratio,
        val_ratio=val_ratio,
        strong_key=strong_key,
        strong_above=strong_above,
        **config,
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
    if predictor.effect_ is not None and predictor.effect_.model is not None:
        click.echo(predictor.effect_.describe())


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
    from scouter_local.data.link import prepare_data
    from scouter_local.data.options import DataOptions
    from scouter_local.predictors.checkpoint import load_model
    from scouter_local.predictors.prediction import predict, write_predictions

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
        from scouter_local.evaluation.explain import explain_predictor, format_explanations

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
    from scouter_local.evaluation.results import write_report
    from scouter_local.evaluation.scoring import evaluate
    from scouter_local.predictors import method_names
    from scouter_local.reporting.plots import write_evaluation_plots

    result = evaluate(model_dir, data_path, db=db, baselines=method_names(baseline=True))
    json_path, csv_path = write_report(result, json_out)
    if plots is not None:
        write_evaluation_plots(result, plots)
    overall = result.summary.loc["overall"]
    click.echo(
        f"{result.method}: {result.n} conditions, NormMSE mean {overall['normmse_mean']:.3f} median "
        f"{overall['normmse_median']:.3f} → {json_path}, {csv_path}"
    )


COMMANDS = [train_cmd, predict_cmd, evaluate_cmd]
