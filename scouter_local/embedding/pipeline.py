"""``embed``: the corpus documents of some genes → vectors of an embedding set, computing only what is new.

A second run computes only genes whose document text changed (new sha256) or is new; vectors with the same raw
identity are copied from other sets instead of recomputed (:mod:`~scouter_local.embedding.cache`). Each batch of
vectors is one transaction, so a killed run leaves only complete rows and the next run resumes.

The steps of :func:`embed_corpus`: resolve the encoder's spec and check the options; a sharded run (or each rank of
a launcher) embeds its share of the missing genes and stages it (:func:`_embed_shard`); the unsharded run
(:func:`_embed_into_set`) opens the set (its row, made with the same settings), plans the work (documents, cached,
reused from other sets, merged from shards), encodes what is left in groups, one transaction each
(:func:`_encode`), refits the set's post-processing and fingerprint, and reports.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa

from gene_corpus import Corpus
from gene_corpus.checks import names_of
from gene_corpus.errors import InputError
from scouter_local.embedding.batching import DEFAULT_BATCH_TOKENS, Batching, progress_bar
from scouter_local.embedding.cache import (
    EmbedPlan,
    plan_embedding,
    stage_shard,
    take_stored_vectors,
    wait_for_all_ranks,
)
from scouter_local.embedding.encoder import Encoder, LoadOptions
from scouter_local.embedding.sets import POSTPROCESS_MODES
from scouter_local.embedding.spec import EncoderSpec, resolve_spec
from scouter_local.embedding.store import (
    check_set_name,
    check_set_source,
    content_key,
    ensure_tables,
    finalise,
    forget_empty_set,
    set_key_of,
    set_row,
    transaction,
    vectors_table,
    write_set_row,
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
        MODEL, see :mod:`scouter_local.embedding.models`.
    pooling, prefix, query_prefix, max_tokens, quantize, long_texts
        See :func:`scouter_local.embedding.spec.resolve_spec` for the defaults.
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
        See :class:`scouter_local.embedding.encoder.Encoder`.
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
    batching = Batching(batch_size, batch_tokens, write_every=write_every, progress=progress)  # before any model
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
    job = _Job(
        db_path,
        set_name,
        spec,
        template=template,
        genes=None if genes is None else names_of(genes, "genes"),
        genes_source=genes_source,
        batching=batching,
        load=LoadOptions(device, dtype, trust_remote_code),
    )
    distributed = shard is None and launcher_rank() is not None
    shard = shard or launcher_rank()
    own = None
    if shard is not None and shard[1] > 1:
        own = _embed_shard(job, shard)
        if not distributed or not wait_for_all_ranks():  # a shard alone, or a rank other than 0: done
            return _timed(own, began)
    report = _embed_into_set(job, postprocess, quiet=own is not None)  # rank 0 has warned about the genes already
    if own is not None:  # rank 0 also embedded its own shard before merging
        report.computed, report.chunked = report.computed + own.computed, report.chunked + own.chunked
        report.truncated += own.truncated
    _timed(report, began)
    log.info("embedded set %s: %s", set_name, report.to_dict())
    return report


@dataclasses.dataclass(frozen=True)
class _Job:
    """What one :func:`embed_corpus` call embeds, where, and how."""

    db_path: str | os.PathLike
    set_name: str
    spec: EncoderSpec
    template: str
    genes: list[str | int] | None
    genes_source: str | None
    batching: Batching
    load: LoadOptions

    @property
    def raw_key(self) -> str:
        return content_key(self.spec.identity())

    def plan(self, corpus: Corpus, *, quiet: bool = False) -> EmbedPlan:
        return plan_embedding(corpus, self.set_name, self.template, self.genes, self.genes_source, quiet=quiet)

    def report(self, plan: EmbedPlan, *, shard: str | None = None) -> EmbedReport:
        """A report of this job's set and model with the counts of ``plan`` (nothing computed yet)."""
        return EmbedReport(
            self.set_name,
            self.spec.model,
            genes=len(plan.docs),
            cached=plan.cached,
            reused=plan.reused,
            merged=plan.merged,
            no_text=plan.no_text,
            left_out=plan.left_out,
            shard=shard,
        )


def _timed(report: EmbedReport, began: float) -> EmbedReport:
    report.seconds = round(time.perf_counter() - began, 2)
    return report


def _embed_shard(job: _Job, shard: tuple[int, int]) -> EmbedReport:
    """Compute shard ``i/n`` of the missing genes and stage it as a parquet file (database opened read-only)."""
    index, count = shard
    with Corpus.open(job.db_path, read_only=True) as corpus:
        plan = job.plan(corpus)
    report = job.report(plan, shard=f"{index}/{count}")
    tables: list[pa.Table] = []
    mine = plan.todo.iloc[index::count]
    if len(mine):
        _encode(job.load.on_rank(index).encoder(job.spec), mine, job.batching, report, tables.append)
    stage_shard(job.db_path, job.set_name, job.raw_key, shard, tables)
    return report


def _embed_into_set(job: _Job, postprocess: str | None, *, quiet: bool) -> EmbedReport:
    """Open the set, plan (cached, reused, merged), encode and write what is left, refit the set."""
    with Corpus.open(job.db_path, read_only=False) as corpus:
        con = corpus.con
        row, mode = _open_set(con, job, postprocess)
        plan = job.plan(corpus, quiet=quiet)
        stored = {"encoder": job.spec.to_dict(), "postprocess": mode, "template": job.template, "source": "embed"}
        with transaction(con):
            write_set_row(con, job.set_name, raw_key=job.raw_key, spec=stored, postprocess=mode, previous=row)
        plan = take_stored_vectors(con, job.db_path, job.set_name, job.raw_key, plan)
        report = job.report(plan)
        if len(plan.todo):

            def write(table: pa.Table) -> None:
                with transaction(con):
                    write_vectors(con, job.set_name, table)

            try:
                _encode(job.load.encoder(job.spec), plan.todo, job.batching, report, write)
            except BaseException:
                forget_empty_set(con, job.set_name)  # a new set that got no vector leaves no row behind
                raise
        with transaction(con):
            report.fingerprint = finalise(con, job.set_name)
        report.dim = set_row(con, job.set_name)["dim"]
    return report


def _open_set(con, job: _Job, postprocess: str | None) -> tuple[dict | None, str]:
    """The set's row (``None`` for a new set) and post-processing mode, after creating the tables; a set of another
    kind, or made with other settings, is an :class:`InputError`."""
    ensure_tables(con)
    row = set_row(con, job.set_name)
    check_set_source(row, job.set_name, "embed", "embed")
    mode = postprocess or (row["postprocess"] if row else "none")
    if row is not None and row["set_key"] != set_key_of(job.raw_key, mode):
        raise InputError(_spec_mismatch(job.set_name, row, job.spec, mode))
    return row, mode


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


def _encode(
    encoder: Encoder,
    docs: pd.DataFrame,
    batching: Batching,
    report: EmbedReport,
    sink: Callable[[pa.Table], None],
) -> None:
    """Encode ``docs`` longest first in groups of ``batching.write_every``, handing each group's vectors table to
    ``sink``; count computed, chunked and truncated texts, dim and genes/s in ``report``."""
    docs = docs.iloc[np.argsort(-docs["text"].str.len().to_numpy(), kind="stable")]
    seconds = 0.0
    with progress_bar(len(docs), f"Embedding ({encoder.spec.model})", disable=not batching.progress) as bar:
        for start in range(0, len(docs), batching.write_every):
            group = docs.iloc[start : start + batching.write_every]
            began = time.perf_counter()
            vectors = encoder.encode(
                group["text"].tolist(), bar=bar, batch_size=batching.batch_size, batch_tokens=batching.batch_tokens
            )
            seconds += time.perf_counter() - began
            report.chunked, report.truncated = (
                report.chunked + encoder.stats.chunked,
                report.truncated + encoder.stats.truncated,
            )
            sink(vectors_table(group["entrez_id"], group["symbol"], group["text_sha256"], vectors))
    report.computed, report.dim = len(docs), encoder.dim
    report.genes_per_s = round(len(docs) / seconds, 2) if seconds else None
