"""What a run need not compute: genes whose (text sha256) vector is already in the set, vectors of the same raw
identity in other sets, and vectors staged by sharded runs.

Sharded runs (``--shard i/n``, or every rank of ``accelerate launch`` on GPUs / ``torchrun --nproc_per_node N``
on CPU) write ``<db>.shards/<set>/<raw_key>-<i>of<n>.parquet``; the next unsharded run (rank 0, after a barrier
over all ranks) merges them once in one transaction and deletes them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gene_corpus import Corpus
from gene_corpus.errors import InputError
from gene_corpus.files import atomic_path
from gene_corpus.gene_lists import resolve_gene_list
from scouter_local.embedding.store import has_tables, sidecar_dir, transaction, write_vectors

log = logging.getLogger(__name__)


def wait_for_all_ranks() -> bool:
    """Barrier over the processes of ``accelerate launch`` / ``torchrun``; True on rank 0 (which then merges)."""
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    dist.barrier()
    main = dist.get_rank() == 0
    dist.destroy_process_group()
    return main


def parse_shard(value: str | None) -> tuple[int, int] | None:
    """``"i/n"`` → ``(i, n)`` with ``0 <= i < n``."""
    if value is None:
        return None
    match = re.fullmatch(r"(\d+)/(\d+)", value.strip())
    if not match or not int(match[1]) < int(match[2]):
        raise InputError(f"shard {value!r} is not I/N with 0 <= I < N (e.g. 0/2)")
    return int(match[1]), int(match[2])


def documents_to_embed(
    corpus: Corpus, template: str, genes: Iterable[str | int] | None, source: str | None
) -> tuple[pd.DataFrame, int, list[str]]:
    """Documents to embed (sorted by entrez id), the number of requested genes without one, and the requested
    genes left out as unknown or ambiguous (see :func:`resolve_gene_list`)."""
    ids, left_out = (None, []) if genes is None else resolve_gene_list(corpus, genes, source=source)
    docs = corpus.documents(template=template, entrez_ids=ids)[["entrez_id", "symbol", "text", "text_sha256"]]
    missing = 0 if ids is None else len(set(ids) - set(docs["entrez_id"]))
    if missing:
        log.warning("%d requested genes have no document text and are skipped", missing)
    return docs.reset_index(drop=True), missing, left_out


def missing_documents(con, set_name: str, docs: pd.DataFrame) -> pd.DataFrame:
    """Documents whose (gene, text sha256) has no vector in the set."""
    if not has_tables(con) or docs.empty:
        return docs
    con.register("_docs", docs)
    try:
        return con.execute(
            "SELECT d.* FROM _docs d ANTI JOIN (SELECT entrez_id, text_sha256 FROM embedding_vectors "
            "WHERE set_name = ?) v USING (entrez_id, text_sha256) ORDER BY entrez_id",
            [set_name],
        ).df()
    finally:
        con.unregister("_docs")


def reuse_vectors(con, set_name: str, raw_key: str, todo: pd.DataFrame) -> int:
    """Copy vectors of ``todo`` genes from other sets with the same raw identity; return how many."""
    con.register("_todo", todo[["entrez_id", "symbol", "text_sha256"]])
    try:
        table = con.sql(
            "SELECT DISTINCT ON (v.entrez_id) v.entrez_id, t.symbol, v.text_sha256, v.vector FROM embedding_vectors v "
            "JOIN embedding_sets s ON v.set_name = s.name JOIN _todo t USING (entrez_id, text_sha256) "
            "WHERE s.raw_key = $raw AND s.name <> $name",
            params={"raw": raw_key, "name": set_name},
        ).to_arrow_table()
    finally:
        con.unregister("_todo")
    if table.num_rows:
        with transaction(con):
            write_vectors(con, set_name, table)
    return table.num_rows


def _shard_dir(db_path: str | os.PathLike, set_name: str) -> Path:
    return sidecar_dir(db_path, "shards") / set_name


def _shard_files(db_path, set_name: str) -> list[Path]:
    folder = _shard_dir(db_path, set_name)
    return sorted(folder.glob("*.parquet")) if folder.is_dir() else []


def stage_shard(
    db_path: str | os.PathLike, set_name: str, raw_key: str, shard: tuple[int, int], tables: list[pa.Table]
) -> None:
    """Write the vectors of shard ``(i, n)`` (tables from :func:`vectors_table`) as
    ``<db>.shards/<set>/<raw_key>-<i>of<n>.parquet`` for :func:`merge_shards`; nothing when there are none."""
    if not tables:
        return
    index, count = shard
    with atomic_path(_shard_dir(db_path, set_name) / f"{raw_key}-{index}of{count}.parquet") as tmp:
        pq.write_table(pa.concat_tables(tables), tmp)


def merge_shards(con, db_path, set_name: str, raw_key: str, todo: pd.DataFrame) -> int:
    """Insert staged shard vectors still needed by ``todo`` (one transaction), then delete the shard files."""
    files = _shard_files(db_path, set_name)
    stale = [f for f in files if not f.name.startswith(f"{raw_key}-")]
    for f in stale:
        log.warning("ignoring shard file %s: it was made with another model/pooling/prefix/max tokens", f)
    tables = [pq.read_table(f) for f in files if f not in stale]
    if not tables:
        return 0
    table = pa.concat_tables(tables)
    wanted = set(zip(todo["entrez_id"].tolist(), todo["text_sha256"].tolist()))
    keep = [k in wanted for k in zip(table.column("entrez_id").to_pylist(), table.column("text_sha256").to_pylist())]
    table = table.filter(pa.array(keep, pa.bool_()))
    with transaction(con):
        write_vectors(con, set_name, table)
    for f in files:
        if f not in stale:
            f.unlink()
    if not any(files[0].parent.iterdir()):
        files[0].parent.rmdir()
    return table.num_rows


@dataclasses.dataclass(frozen=True)
class EmbedPlan:
    """What a run has to compute.

    Attributes
    ----------
    docs
        Documents of the genes asked for (``entrez_id, symbol, text, text_sha256``, by Entrez id).
    no_text, left_out
        Genes asked for without a document, and those left out as unknown or ambiguous.
    cached
        Documents whose vector is already in the set.
    todo
        Documents still without a vector: to compute.
    reused, merged
        Vectors copied from other sets and merged from staged shards (:func:`take_stored_vectors`).
    """

    docs: pd.DataFrame
    no_text: int
    left_out: list[str]
    cached: int
    todo: pd.DataFrame
    reused: int = 0
    merged: int = 0


def plan_embedding(
    corpus: Corpus,
    set_name: str,
    template: str,
    genes: Iterable[str | int] | None,
    source: str | None,
    *,
    quiet: bool = False,
) -> EmbedPlan:
    """The documents of ``genes`` (see :func:`documents_to_embed`; ``quiet``: without its warnings) and those
    without a vector in the set."""
    with _no_warnings() if quiet else contextlib.nullcontext():
        docs, no_text, left_out = documents_to_embed(corpus, template, genes, source)
    todo = missing_documents(corpus.con, set_name, docs)
    return EmbedPlan(docs, no_text, left_out, cached=len(docs) - len(todo), todo=todo)


@contextlib.contextmanager
def _no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def take_stored_vectors(con, db_path, set_name: str, raw_key: str, plan: EmbedPlan) -> EmbedPlan:
    """Copy the vectors ``plan`` still needs from other sets with the same raw identity, merge staged shards; the
    plan with what is left to compute."""
    if not len(plan.todo):
        return plan
    reused = reuse_vectors(con, set_name, raw_key, plan.todo)
    merged = merge_shards(con, db_path, set_name, raw_key, plan.todo)
    return dataclasses.replace(plan, todo=missing_documents(con, set_name, plan.todo), reused=reused, merged=merged)
