"""``embed``: the corpus documents of some genes → vectors of an embedding set, computing only what is new.

A second run computes only genes whose document text changed (new sha256) or is new; vectors with the same raw
identity are copied from other sets instead of recomputed (:mod:`~scouter_local.embedding.cache`). Each batch of
vectors is one transaction, so a killed run leaves only complete rows and the next run resumes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import warnings
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gene_corpus import Corpus
from gene_corpus.checks import names_of
from gene_corpus.corpus import utc_now
from gene_corpus.errors import InputError
from gene_corpus.files import atomic_path
from scouter_local.embedding.cache import (
    documents_to_embed,
    merge_shards,
    missing_documents,
    reuse_vectors,
    wait_for_all_ranks,
)
from scouter_local.embedding.encoder import DEFAULT_BATCH_TOKENS, Encoder, check_batching, progress_bar
from scouter_local.embedding.sets import POSTPROCESS_MODES
from scouter_local.embedding.spec import EncoderSpec, resolve_spec
from scouter_local.embedding.store import (
    check_set_name,
    check_set_source,
    content_key,
    ensure_tables,
    finalise,
    forget_empty_set,
    run_sql,
    set_row,
    sidecar_dir,
    transaction,
    vectors_table,
    write_vectors,
)
from scouter_local.runtime import launcher_rank

log = logging.getLogger(__name__)


@dataclasses.dataclass
class EmbedReport:
    """What :func:`embed_corpus` did.

    Attributes
    ----------
    set_name, model, fingerprint
        The set, the MODEL and the set fingerprint after the run.
    genes
        Genes asked for that have a document (all with ``genes=None``).
    computed, cached, reused, merged
        Vectors run through the model, already in the set with the same text, copied from another set with the
        same model/pooling/prefix/max tokens/quantisation, and merged from staged shard files.
    no_text
        Genes asked for that have no document (nothing to embed).
    left_out
        Genes asked for that the corpus does not know or cannot tell apart (unknown, ambiguous): not embedded.
    chunked, truncated
        Texts longer than ``max_tokens``, embedded as the average of their chunks (``long_texts="chunk"``) or
        from their first chunk only (``long_texts="truncate"``).
    dim, seconds, genes_per_s
        Vector size, wall time, computed genes per second of encoding.
    shard
        ``"i/n"`` for a sharded run (vectors staged, not in the database yet), else ``None``.
    """

    set_name: str
    model: str
    genes: int = 0
    computed: int = 0
    cached: int = 0
    reused: int = 0
    merged: int = 0
    no_text: int = 0
    left_out: list[str] = dataclasses.field(default_factory=list)
    chunked: int = 0
    truncated: int = 0
    dim: int | None = None
    seconds: float = 0.0
    genes_per_s: float | None = None
    fingerprint: str | None = None
    shard: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _encode_groups(
    encoder: Encoder, docs: pd.DataFrame, batching: dict, write_every: int, progress: bool, sink
) -> tuple[int, int, float]:
    """Encode ``docs`` longest first in groups of ``write_every``, handing each group's table to ``sink``.

    Returns chunked texts, truncated texts and seconds spent encoding.
    """
    order = np.argsort(-docs["text"].str.len().to_numpy(), kind="stable")
    docs = docs.iloc[order]
    chunked, truncated, seconds = 0, 0, 0.0
    with progress_bar(len(docs), f"Embedding ({encoder.spec.model})", disable=not progress) as bar:
        for start in range(0, len(docs), write_every):
            group = docs.iloc[start : start + write_every]
            began = time.perf_counter()
            vectors = encoder.encode(group["text"].tolist(), bar=bar, **batching)
            seconds += time.perf_counter() - began
            chunked, truncated = chunked + encoder.stats.chunked, truncated + encoder.stats.truncated
            sink(vectors_table(group["entrez_id"], group["symbol"], group["text_sha256"], vectors))
    return chunked, truncated, seconds


def embed_corpus(
    db_path: str | os.PathLike,
    set_name: str,
    model: str | os.PathLike,
    *,
    pooling: str | None = None,
    prefix: str | None = None,
    query_prefix: str | None = None,
    max_tokens: int | None = None,
    quantize: str | None = None,
    long_texts: str = "chunk",
    batch_size: int | None = None,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    genes: Iterable[str | int] | None = None,
    genes_source: str | None = None,
    postprocess: str | None = None,
    template: str = "genept",
    device: str | None = None,
    dtype: str = "auto",
    shard: tuple[int, int] | None = None,
    write_every: int = 256,
    allow_download: bool = False,
    trust_remote_code: bool = False,
    progress: bool = True,
) -> EmbedReport:
    """Embed the corpus documents of ``genes`` (all by default) into the set ``set_name``, computing only what is new.

    Parameters
    ----------
    db_path
        Corpus database (the set's tables are added to it).
    set_name
        Name of the embedding set; a set keeps the model, pooling, prefix, max tokens, quantisation, long-text
        mode and post-processing it was created with (another combination needs another name).
    model
        MODEL, see :mod:`scouter_local.encoders`.
    pooling, prefix, query_prefix, max_tokens, quantize, long_texts
        See :func:`scouter_local.encoders.resolve_spec` for the defaults.
    batch_size, batch_tokens
        At most this many chunks (``None``: no bound) and padded tokens per forward pass; they change speed and
        memory, not the vectors (beyond float rounding).
    genes
        Symbols / ids to embed (resolved through the corpus); ``None`` = every gene with a document. Unknown
        and ambiguous entries are left out with one warning (:func:`resolve_gene_list`) and listed in the
        report's ``left_out``.
    genes_source
        Where ``genes`` came from (a file name), named in that warning.
    postprocess
        ``none``, ``center`` or ``whiten``, fitted on all vectors of the set after each run (default: the set's,
        ``none`` for a new set).
    template
        Document template of :meth:`gene_corpus.Corpus.documents`.
    device, dtype
        See :class:`scouter_local.encoders.Encoder`.
    shard
        ``(i, n)``: compute only every n-th missing gene from the i-th and stage it in
        ``<db>.shards/<set>/`` without writing the database (read-only); the next unsharded run merges.
        Inside ``accelerate launch`` / ``torchrun`` with several processes (``WORLD_SIZE > 1``) each rank takes
        its shard automatically, then rank 0 merges after all ranks are done.
    write_every
        Genes per database transaction (a killed run loses at most this many).

    Returns
    -------
    :class:`EmbedReport`.

    Raises
    ------
    InputError
        Bad set name, model or option, a gene list of which no gene is known, or a set that exists with another
        specification.
    """
    check_set_name(set_name)
    if postprocess is not None and postprocess not in POSTPROCESS_MODES:
        raise InputError(f"post-processing {postprocess!r} is not one of {', '.join(POSTPROCESS_MODES)}")
    check_batching(batch_size, batch_tokens)  # before any model is loaded
    began = time.perf_counter()
    spec = resolve_spec(
        model,
        pooling=pooling,
        prefix=prefix,
        query_prefix=query_prefix,
        max_tokens=max_tokens,
        quantize=quantize,
        long_texts=long_texts,
        allow_download=allow_download,
        trust_remote_code=trust_remote_code,
    )
    raw_key = content_key(spec.identity())
    load = dict(device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    batching = dict(batch_size=batch_size, batch_tokens=batch_tokens)
    genes = None if genes is None else names_of(genes, "genes")
    distributed = shard is None and launcher_rank() is not None
    shard = shard or launcher_rank()
    own = None
    if shard is not None and shard[1] > 1:
        own = report = _embed_shard(
            db_path,
            set_name,
            spec,
            raw_key,
            shard,
            (genes, genes_source),
            template,
            batching,
            write_every,
            load,
            progress,
        )
        if not distributed:
            report.seconds = round(time.perf_counter() - began, 2)
            return report
        if not wait_for_all_ranks():
            return report

    with Corpus.open(db_path, read_only=False) as corpus:
        con = corpus.con
        ensure_tables(con)
        row = set_row(con, set_name)
        check_set_source(row, set_name, "embed", "embed")
        mode = postprocess or (row["postprocess"] if row else "none")
        set_key = content_key({"raw": raw_key, "postprocess": mode})
        if row is not None and row["set_key"] != set_key:
            raise InputError(_spec_mismatch(set_name, row, spec, mode))
        if own is None:  # a rank that embedded its shard has warned about the gene list already
            docs, no_text, left_out = documents_to_embed(corpus, template, genes, genes_source)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                docs, no_text, left_out = documents_to_embed(corpus, template, genes, genes_source)
        report = EmbedReport(set_name, spec.model, genes=len(docs), no_text=no_text, left_out=left_out)
        stored = {"encoder": spec.to_dict(), "postprocess": mode, "template": template, "source": "embed"}
        with transaction(con):
            run_sql(
                con,
                "INSERT OR REPLACE INTO embedding_sets (name, set_key, raw_key, spec, dim, postprocess, "
                "postprocess_params, fitted_on, fingerprint, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    set_name,
                    set_key,
                    raw_key,
                    json.dumps(stored),
                    row and row["dim"],
                    mode,
                    row and row["postprocess_params"],
                    row and row["fitted_on"],
                    row and row["fingerprint"],
                    utc_now(),
                ],
            )
        todo = missing_documents(con, set_name, docs)
        report.cached = len(docs) - len(todo)
        if len(todo):
            report.reused = reuse_vectors(con, set_name, raw_key, todo)
            report.merged = merge_shards(con, db_path, set_name, raw_key, todo)
            todo = missing_documents(con, set_name, todo)
        if len(todo):

            def sink(table: pa.Table) -> None:
                with transaction(con):
                    write_vectors(con, set_name, table)

            try:
                encoder = Encoder(spec, **load)
                report.chunked, report.truncated, seconds = _encode_groups(
                    encoder, todo, batching, write_every, progress, sink
                )
            except BaseException:
                forget_empty_set(con, set_name)  # a new set that got no vector leaves no row behind
                raise
            report.computed = len(todo)
            report.genes_per_s = round(len(todo) / seconds, 2) if seconds else None
        with transaction(con):
            report.fingerprint = finalise(con, set_name)
        report.dim = set_row(con, set_name)["dim"]
    if own is not None:  # rank 0 also embedded its own shard before merging
        report.computed, report.chunked = report.computed + own.computed, report.chunked + own.chunked
        report.truncated += own.truncated
    report.seconds = round(time.perf_counter() - began, 2)
    log.info("embedded set %s: %s", set_name, report.to_dict())
    return report


def _spec_mismatch(set_name: str, row: dict, spec: EncoderSpec, mode: str) -> str:
    old = json.loads(row["spec"])
    before = {"long_texts": "chunk"} | old["encoder"] | {"postprocess": old["postprocess"]}
    now = spec.to_dict() | {"postprocess": mode}
    changed = [
        f"{k} {before.get(k)!r} -> {now[k]!r}"
        for k in ("model_fingerprint", "pooling", "prefix", "max_tokens", "quantize", "long_texts", "postprocess")
        if before.get(k) != now[k]
    ]
    return (
        f"set {set_name!r} was made with other settings ({'; '.join(changed)}); use another --set name "
        "(vectors already computed with the same model settings are reused)"
    )


def _embed_shard(
    db_path,
    set_name: str,
    spec: EncoderSpec,
    raw_key: str,
    shard: tuple[int, int],
    genes: tuple,
    template: str,
    batching: dict,
    write_every: int,
    load: dict,
    progress: bool,
) -> EmbedReport:
    """Compute shard ``i/n`` of the missing genes (``genes``: list or ``None``, and where it came from) and stage
    it as a parquet file (database opened read-only)."""
    index, count = shard
    with Corpus.open(db_path, read_only=True) as corpus:
        docs, no_text, left_out = documents_to_embed(corpus, template, *genes)
        todo = missing_documents(corpus.con, set_name, docs)
    mine = todo.iloc[index::count]
    report = EmbedReport(
        set_name,
        spec.model,
        genes=len(docs),
        no_text=no_text,
        left_out=left_out,
        cached=len(docs) - len(todo),
        shard=f"{index}/{count}",
    )
    if "WORLD_SIZE" in os.environ and load["device"] is None:
        import torch

        if torch.cuda.is_available():
            load = load | {"device": f"cuda:{int(os.environ.get('LOCAL_RANK', index))}"}
    tables: list[pa.Table] = []
    if len(mine):
        encoder = Encoder(spec, **load)
        report.chunked, report.truncated, seconds = _encode_groups(
            encoder, mine, batching, write_every, progress, tables.append
        )
        report.computed, report.dim = len(mine), encoder.dim
        report.genes_per_s = round(len(mine) / seconds, 2) if seconds else None
    out = sidecar_dir(db_path, "shards") / set_name / f"{raw_key}-{index}of{count}.parquet"
    if tables:
        with atomic_path(out) as tmp:
            pq.write_table(pa.concat_tables(tables), tmp)
    return report
