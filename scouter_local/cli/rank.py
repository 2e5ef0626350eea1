"""``rank``: a thin click command over :func:`scouter_local.predictors.ranking.rank`."""

from __future__ import annotations

import click


@click.command("rank")
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False), help="Model folder.")
@click.option(
    "--genes",
    default=None,
    type=click.Path(dir_okay=False),
    help="Rank only these genes: a file with one symbol, alias or id per line (resolved through the corpus).",
)
@click.option("--all", "all_genes", is_flag=True, help="Rank every gene of the model's set, measured ones included.")
@click.option("--top", type=int, default=None, help="Keep the N most likely genes.")
@click.option(
    "--db", default=None, type=click.Path(dir_okay=False), help="Corpus database (default: the training one)."
)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Ranking CSV.")
@click.option("--json", "as_json", is_flag=True, help="Print the ranking as JSON (default: the top 10 as text).")
def rank_cmd(model_dir, genes, all_genes, top, db, out, as_json):
    """Rank the genes the screen did not measure by the calibrated probability that perturbing them has a
    detectable effect, with the nearest measured genes as the explanation (default: every gene of the model's
    embedding set outside its training data).

    Example: scouter-local rank --model m1 --top 50 --out ranking.csv
    """
    from gene_corpus.gene_lists import read_gene_list
    from scouter_local.predictors.ranking import rank, ranking_json, write_ranking

    frame = rank(model_dir, read_gene_list(genes) if genes else None, all_genes=all_genes, top=top, db=db)
    write_ranking(frame, out)
    if as_json:
        import json

        click.echo(json.dumps(ranking_json(frame), indent=1))
        return
    ranked = frame[frame["reason"].isna()]
    for row in ranked.head(10).itertuples():
        near = ", ".join(f"{n['symbol']} ({'effect' if n['label'] else 'none'})" for n in row.neighbours[:3])
        click.echo(f"{int(row.rank):>4}  {row.symbol:<12} p_effect {row.p_effect:.3f}  nearest measured: {near}")
    click.echo(f"ranked {len(ranked)} gene(s), {len(frame) - len(ranked)} not ranked → {out}")


COMMANDS = [rank_cmd]
