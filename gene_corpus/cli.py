"""``scouter-local corpus …``: import, pull, resolve, show, stats and export (thin layer over :class:`Corpus`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gene_corpus.documents import DEFAULT_TEMPLATE, TEMPLATES
from gene_corpus.errors import InputError
from gene_corpus.formats import FORMATS

db_option = click.option(
    "--db", "db", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Corpus database (DuckDB file)."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
genes_file_option = click.option(
    "--genes",
    "genes_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File with one gene (symbol, alias, Entrez or Ensembl id) per line; '#' starts a comment.",
)


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


def _gene_list(genes: tuple[str, ...], genes_file: Path | None) -> list[str]:
    from gene_corpus.gene_lists import read_gene_list

    return list(genes) + (read_gene_list(genes_file) if genes_file is not None else [])


@click.group("corpus")
def corpus() -> None:
    """Gene text corpus: import files or pull mygene, resolve symbols, show documents.

    Example: scouter-local corpus import --db genes.duckdb ../shared/data/gene_ids ../shared/data/gene_text
    ../shared/data/go
    """


@corpus.command("import")
@db_option
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(sorted(FORMATS)), help="Force the format (default: detect from header)."
)
@click.option("--source-version", help="Version recorded on every row (default: file name and checksum).")
@json_option
def import_command(
    db: Path, files: tuple[Path, ...], fmt: str | None, source_version: str | None, as_json: bool
) -> None:
    """Import gene id, text, GO, UniProt or mygene JSON-lines files (or every file of folders) in one transaction.

    Formats are detected by header; identifier files are imported first. Re-importing a file changes nothing.

    Example: scouter-local corpus import --db genes.duckdb ../shared/data/gene_ids/gene_info_human.tsv.gz
    ../shared/data/gene_text/refseq_summaries_human.tsv.gz
    """
    from gene_corpus.corpus import Corpus

    with Corpus.open(db) as c:
        reports = c.import_files(files, fmt, source_version=source_version)
        stats = c.stats()
    if as_json:
        _echo_json({"files": [r.to_dict() for r in reports], "genes": stats["genes"], "documents": stats["documents"]})
        return
    for r in reports:
        state = "already imported, skipped" if r.skipped else f"+{r.rows_added} rows, {r.rows_updated} updated"
        click.echo(f"{r.path}: {r.format}, {r.rows_read} rows read, {state}")
        if r.unresolved:
            shown = "; ".join(f"{k} ({why})" for k, why in r.unresolved[:5])
            more = f" … (+{len(r.unresolved) - 5})" if len(r.unresolved) > 5 else ""
            click.echo(f"  {len(r.unresolved)} not resolved to a gene: {shown}{more}")
        for note in r.notes:
            click.echo(f"  note: {note}")
    click.echo(f"{db}: {stats['genes']} genes, {stats['documents']} documents {stats['documents_by_kind']}")


@corpus.command("pull")
@db_option
@click.argument("symbols", nargs=-1)
@genes_file_option
@click.option(
    "--mygene-url",
    "url",
    default=None,
    help="mygene.info server or internal mirror (default: the public https://mygene.info).",
)
@click.option("--retries", default=5, show_default=True, type=click.IntRange(1, 20), help="Attempts per request.")
@click.option(
    "--backoff",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0, 60),
    help="First retry wait (s), doubled each time.",
)
@json_option
def pull_command(
    db: Path,
    symbols: tuple[str, ...],
    genes_file: Path | None,
    url: str | None,
    retries: int,
    backoff: float,
    as_json: bool,
) -> None:
    """Fetch genes (summary, name, type, aliases, Ensembl, UniProt, GO) from mygene, resumably.

    Uses the official mygene client; each batch of 1,000 genes is stored in its own transaction, so rerunning an
    interrupted pull continues where it stopped.

    Example: scouter-local corpus pull --db genes.duckdb --genes perturbed_genes.txt --mygene-url http://mygene.internal
    """
    from gene_corpus.corpus import Corpus
    from gene_corpus.mygene import pull

    queries = _gene_list(symbols, genes_file)
    with Corpus.open(db) as c:
        report = pull(c, queries, retries=retries, backoff=backoff, **({"url": url} if url else {}))
    if as_json:
        _echo_json(report.to_dict())
        return
    click.echo(
        f"{report.url}: {report.queries} queries, {report.already_pulled} already pulled, {report.found} found, "
        f"{report.genes_fetched} genes fetched, +{report.rows_added} rows, {report.rows_updated} updated"
    )
    if report.notfound:
        click.echo(f"  not found ({len(report.notfound)}): {', '.join(report.notfound)}")
    for query, ids in report.duplicates.items():
        click.echo(f"  duplicate hits for {query}: {', '.join(map(str, ids))} (all stored)")
    for key, reason in report.unresolved:
        click.echo(f"  not stored: {key} ({reason})")


@corpus.command("resolve")
@db_option
@click.argument("queries", nargs=-1)
@genes_file_option
@click.option("--unresolved", is_flag=True, help="Show only the unknown and ambiguous genes.")
@json_option
def resolve_command(
    db: Path, queries: tuple[str, ...], genes_file: Path | None, unresolved: bool, as_json: bool
) -> None:
    """Resolve symbols, aliases, previous symbols, Ensembl or Entrez ids to Entrez id + current symbol.

    Genes come as arguments, from a --genes file (then a count of each kind of match follows on stderr), or both.

    Example: scouter-local corpus resolve --db genes.duckdb KIAA1804 ENSG00000141510 7157 --json
    """
    from collections import Counter

    from gene_corpus.corpus import Corpus

    queries = _gene_list(queries, genes_file)
    if not queries:
        raise InputError("no genes to resolve; pass SYMBOL_OR_ID ... or --genes FILE")
    with Corpus.open(db, read_only=True) as c:
        resolutions = c.resolve(queries)
    shown = [r for r in resolutions if r.entrez_id is None] if unresolved else resolutions
    if as_json:
        _echo_json([r.to_dict() for r in shown])
    else:
        for r in shown:
            extra = f"\t{', '.join(r.candidates)}" if r.candidates else ""
            click.echo(
                f"{r.query}\t{r.entrez_id if r.entrez_id is not None else '-'}\t{r.symbol or '-'}\t{r.how}{extra}"
            )
    if genes_file is not None and not as_json:
        counts = Counter(r.how for r in resolutions).most_common()
        click.echo(f"{genes_file}: {len(resolutions)} genes, " + ", ".join(f"{n} {how}" for how, n in counts), err=True)


@corpus.command("show")
@db_option
@click.argument("gene")
@click.option("--template", default=DEFAULT_TEMPLATE, show_default=True, type=click.Choice(sorted(TEMPLATES)))
@json_option
def show_command(db: Path, gene: str, template: str, as_json: bool) -> None:
    """Show a gene's document and the provenance of each text.

    Example: scouter-local corpus show --db genes.duckdb KIAA1804
    """
    from gene_corpus.corpus import Corpus

    with Corpus.open(db, read_only=True) as c:
        shown = c.show(gene, template)
    if as_json:
        _echo_json(shown)
        return
    click.echo(f"{shown['symbol']} (Entrez {shown['entrez_id']}, {shown['how']} match for {gene}): {shown['name']}")
    click.echo(
        f"  type {shown['gene_type']}, chromosome {shown['chromosome']}, "
        f"Ensembl {', '.join(shown['ensembl_ids']) or '-'}"
    )
    for kind, names in shown["aliases"].items():
        click.echo(f"  {kind}: {', '.join(names[:15])}{' …' if len(names) > 15 else ''}")
    doc = shown["document"]
    if doc is None:
        click.echo("  no document (no summary, GenePT, UniProt or GO text)")
    else:
        click.echo(
            f"document ({doc['template']}, kind {doc['kind']}, parts {doc['parts']}, sha256 {doc['text_sha256'][:12]}):"
        )
        click.echo(f"  {doc['text']}")
    for t in shown["texts"]:
        click.echo(
            f"text {t['source']}: from {t['origin']} ({t['source_version']}, retrieved {t['retrieved_at']}, "
            f"key {t['source_key']})"
        )


@corpus.command("stats")
@db_option
@json_option
def stats_command(db: Path, as_json: bool) -> None:
    """Counts: genes, texts by source, documents by kind, sizes, imported files.

    Example: scouter-local corpus stats --db genes.duckdb --json
    """
    from gene_corpus.corpus import Corpus

    with Corpus.open(db, read_only=True) as c:
        stats = c.stats()
    if as_json:
        _echo_json(stats)
        return
    click.echo(
        f"genes: {stats['genes']}, documents: {stats['documents']}, database: {stats['database_bytes'] / 2**20:.1f} MiB"
    )
    for source, n in stats["texts_by_source"].items():
        click.echo(f"  texts {source}: {n} ({stats['text_chars_by_source'][source] / 1e6:.1f} M characters)")
    for kind, n in stats["documents_by_kind"].items():
        click.echo(f"  documents {kind}: {n}")
    for kind, n in stats["aliases_by_kind"].items():
        click.echo(f"  aliases {kind}: {n}")
    click.echo(
        f"  GO annotations: {stats['go_annotations']}, GO terms: {stats['go_terms']}, "
        f"unresolved source rows: {stats['unresolved']}"
    )
    for f in stats["files"]:
        click.echo(f"  file {f['name']} ({f['format']}): {f['rows_read']} rows, sha256 {f['sha256'][:12]}")


@corpus.command("export")
@db_option
@click.option("--format", "fmt", required=True, type=click.Choice(["mygene-jsonl"]), help="Output format.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output file.")
@click.argument("symbols", nargs=-1)
@genes_file_option
def export_command(db: Path, fmt: str, out: Path, symbols: tuple[str, ...], genes_file: Path | None) -> None:
    """Export genes as mygene JSON lines (one record per line), for `corpus import` on an air-gapped machine.

    All genes unless genes are given.

    Example: scouter-local corpus export --db genes.duckdb --format mygene-jsonl --out genes.jsonl TP53 KIAA1804
    """
    from gene_corpus.corpus import Corpus
    from gene_corpus.files import atomic_path
    from gene_corpus.gene_lists import resolve_gene_list
    from gene_corpus.mygene_records import gene_records

    queries = _gene_list(symbols, genes_file)
    with Corpus.open(db, read_only=True) as c:
        ids = resolve_gene_list(c, queries, source=str(genes_file) if genes_file else None)[0] if queries else None
        records = gene_records(c.con, ids)
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record, sort_keys=True) + "\n" for record in records)
    click.echo(f"{out}: {len(records)} genes ({fmt})")


COMMANDS = [corpus]
