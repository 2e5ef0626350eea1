"""Which open model should we use here? ``compare-models``: the same predictors trained on several embedding sets
of one screen, each beside its shuffled-embedding control, with a neighbour-quality score per set (share of a
gene's top-k neighbours that share a GO Biological Process term with it, against the share for random genes).

"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gene_corpus import Corpus
from gene_corpus.errors import InputError
from gene_corpus.files import atomic_path, write_json_atomic
from scouter_local.benchmarking.benchmark import DEFAULT_SHUFFLES, run_benchmark
from scouter_local.benchmarking.results import MethodResult
from scouter_local.benchmarking.tables import benchmark_frame, comparison_table, signal_frame
from scouter_local.conditions import genes_in
from scouter_local.data.options import DataOptions
from scouter_local.evaluation.neighbours import go_neighbor_quality
from scouter_local.evaluation.strong import StrongTargets
from scouter_local.predictors import method_names
from scouter_local.reporting.document import Document
from scouter_local.workflows.stages import ATTRIBUTION, GO_K, Stages, go_bp_annotations, model_set_name, resolve_to_ids

log = logging.getLogger(__name__)


def default_methods() -> list[str]:
    """What ``compare-models`` trains unless told: the methods whose predictions depend on the embeddings, then
    ``train_mean``, the baseline they must beat."""
    return [*method_names(uses_embeddings=True), "train_mean"]


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
    results
        Benchmark results (one per set and method, and the noise ceiling where there is one).
    block
        The conditions the table is about: ``overall``, or ``strong`` when a strong rule was given.
    table
        Text table: per set and method NormMSE, Pearson Δ, direction, the test against shuffled embeddings and the
        set's neighbour quality.
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
    results: list[MethodResult] = field(default_factory=list)
    block: str = "overall"
    table: str = ""
    report: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self, dict_factory=lambda items: {k: v for k, v in items if k != "results"})
        d["results"] = [r.to_json() for r in self.results]
        return d


def _common_screen(
    data_path: Path, options: DataOptions, db: Path, sets: Sequence[str], out: Path
) -> tuple[Path, list[str]]:
    """The screen restricted to conditions every set can embed, so that all sets get the same splits.

    Returns the original path when no set lacks a gene another has, else ``out/screen_common.h5ad`` (written
    through a temporary file) and the conditions left out.
    """
    import warnings

    import anndata as ad

    from scouter_local.data.link import resolve_genes
    from scouter_local.data.read import read_perturbation_data, spell_conditions
    from scouter_local.embedding.store import load_embedding_set

    base = read_perturbation_data(data_path, options)
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


def compare_models(
    data_path: str | os.PathLike,
    options: DataOptions,
    *,
    db: str | os.PathLike,
    out: str | os.PathLike,
    set_names: Sequence[str] = (),
    models: Sequence[str] = (),
    templates: Sequence[str] = ("genept",),
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] = (1, 2),
    k: int = GO_K,
    genes: Sequence[str] = (),
    postprocess: str | None = None,
    epochs: int | None = None,
    shuffles: int = DEFAULT_SHUFFLES,
    strong: StrongTargets | None = None,
) -> ComparisonResult:
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
        Predictors (default: :func:`default_methods`), split seeds and maximum Scouter epochs.
    shuffles, strong
        As :func:`~scouter_local.benchmarking.run_benchmark`: shuffled-embedding controls per run, the ``strong``
        group.
    k
        Neighbours per gene for the GO neighbour quality.

    Returns
    -------
    :class:`ComparisonResult`; its ``table`` is what the command prints.
    """
    from scouter_local.data.read import read_perturbation_data
    from scouter_local.embedding.pipeline import embed_corpus
    from scouter_local.embedding.store import load_embedding_set

    methods = list(methods) if methods is not None else default_methods()
    sets = list(dict.fromkeys(set_names))
    pairs = [(m, t) for m in models for t in templates]
    sets += [model_set_name(m, t) for m, t in pairs if model_set_name(m, t) not in sets]
    if len(sets) < 1:
        raise InputError("nothing to compare: pass set_names=NAME (repeatable or comma-separated) and/or models=MODEL")
    if not seeds:
        raise InputError("seeds names no seed; e.g. seeds=1-2")
    if not Path(db).is_file():
        raise InputError(
            f"db={str(db)!r}: no such database; build it with `scouter-local corpus import` or `scouter-local demo`"
        )
    stages = Stages(COMPARE_STAGES)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    result = ComparisonResult(
        out=out,
        db=Path(db).resolve(),
        data=Path(data_path).resolve(),
        sets=sets,
        methods=list(methods),
        seeds=list(seeds),
        block="strong" if strong is not None else "overall",
    )

    with stages("embed", f"embedding sets of {len(pairs)} model/template pair(s)" if pairs else "no set to embed"):
        if pairs:
            perturbed = genes_in(read_perturbation_data(data_path, options).perturbations)
            with Corpus.open(db, read_only=True) as corpus:
                ids, unresolved = resolve_to_ids(corpus, [*perturbed, *genes])
            if unresolved:
                log.warning(
                    "%d gene(s) unknown to the corpus are not embedded: %s", len(unresolved), ", ".join(unresolved[:10])
                )
            for m, t in pairs:
                name = model_set_name(m, t)
                result.embedded[name] = embed_corpus(
                    db, name, m, template=t, genes=[str(e) for e in ids], postprocess=postprocess
                ).to_dict()

    with stages(
        "benchmark", f"training {', '.join(methods)} on {len(sets)} set(s), seeds {', '.join(map(str, seeds))}"
    ):
        bench_dir = out / "benchmark"
        data_path, result.dropped = _common_screen(Path(data_path), options, Path(db), sets, out)
        bench = run_benchmark(
            data_path,
            options,
            db=db,
            set_names=sets,
            methods=list(methods),
            seeds=list(seeds),
            out=bench_dir,
            config={"epochs": epochs} if epochs else {},
            shuffles=shuffles,
            strong=strong,
        )
        order = {(s, m): i for i, (s, m) in enumerate((s, m) for s in sets for m in methods)}
        result.results = sorted(bench.results, key=lambda r: order.get((r.set, r.method), len(order)))

    with (
        stages("neighbors", f"GO Biological Process share of the top-{k} neighbours per set"),
        Corpus.open(db, read_only=True) as corpus,
    ):
        embs = {s: load_embedding_set(corpus, s) for s in sets}
        common = set.intersection(*({int(e) for e in emb.entrez_ids if e >= 0} for emb in embs.values()))
        annotations = go_bp_annotations(corpus)
        result.quality = {s: go_neighbor_quality(emb, annotations, k=k, entrez_ids=common) for s, emb in embs.items()}

    with stages("report", f"writing the comparison into {out}"):
        result.table = comparison_table(result.results, result.quality, block=result.block, text=True)
        result.timings = {**stages.seconds, "report": 0.0, "total": stages.total}
        result.report = {k: str(v) for k, v in write_comparison_report(result).items()}
    result.timings = {**stages.seconds, "total": stages.total}
    write_json_atomic(out / "comparison.json", result.to_dict(), indent=1, default=str)
    return result


def write_comparison_report(result: ComparisonResult) -> dict[str, Path]:
    """``comparison.csv``, ``plots/comparison.png``, ``plots/normmse_by_subgroup.png`` and
    ``comparison.md``/``.html`` into ``result.out``."""
    from scouter_local.reporting.plots import group_grid, neighbour_quality_bars, pyplot, save_figure, signal_bars

    out = Path(result.out)
    table = comparison_table(result.results, result.quality, block=result.block)
    csv_path = out / "comparison.csv"
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False)
    signals = signal_frame(result.results)
    block = result.block
    shown = signals[signals["block"] == block]
    methods = list(dict.fromkeys(shown["method"]))
    ncols = min(3, len(methods) + 1)
    nrows = -(-(len(methods) + 1) // ncols)
    width = max(5.5, 0.9 * len(result.sets) + 2)
    fig, axes = pyplot().subplots(nrows, ncols, figsize=(width * ncols, 4.4 * nrows), squeeze=False)
    panels = list(axes.ravel())
    for ax, method in zip(panels, methods):
        signal_bars(shown[shown["method"] == method], ax=ax, label="set", title=f"{method} ({block} conditions)")
    neighbour_quality_bars(result.quality, ax=panels[len(methods)])
    for ax in panels[len(methods) + 1 :]:
        ax.set_visible(False)
    fig.suptitle("Real vs row-permuted embeddings per method; GO neighbour quality per set", fontsize=12)
    fig.tight_layout()
    plot = save_figure(fig, out / "plots" / "comparison.png")
    ax = group_grid(
        {f"{r.set}: {r.method}": r.evaluation for r in result.results},
        metric="normmse" if block == "overall" else "pearson_delta_top20",
        title="Mean by group, per embedding set and method",
    )
    grid = save_figure(ax.figure, out / "plots" / "by_group.png")
    doc = Document("scouter-local compare-models")
    doc.paragraph(
        f"Screen `{result.data}`; corpus `{result.db}`; embedding sets {', '.join(result.sets)}; "
        f"methods {', '.join(result.methods)}; split seeds {', '.join(map(str, result.seeds))}."
    )
    doc.image(
        plot,
        "Left: each embedding-using method with the real embeddings (blue) and with the same genes' "
        "vectors row-permuted (grey), p-value of the paired test above. Right: share of a gene's nearest "
        "neighbours sharing a GO Biological Process term (bar) against random genes (black line), on the "
        "genes every set holds.",
    )
    doc.table(
        table,
        "Overall metrics per set and method, the test against shuffled embeddings, and the set's GO neighbour quality.",
    )
    doc.table(signals, "Real vs shuffled embeddings per block (delta > 0: real better).")
    if result.dropped:
        doc.paragraph(
            f"Conditions left out for every set because some set has no embedding for one of their genes "
            f"(so that all sets are trained and tested on the same splits): {', '.join(result.dropped)}."
        )
    doc.paragraph(
        "Neighbour quality rewards embeddings whose neighbours share GO Biological Process terms; for sets "
        "made from GO annotations or GO-derived texts it is circular, not evidence."
    )
    doc.image(grid, "Mean per group (median in brackets).")
    doc.table(benchmark_frame(result.results), "Per group.")
    doc.paragraph(ATTRIBUTION)
    paths = doc.write(out, stem="comparison")
    return {**paths, "csv": csv_path, "plots": [plot, grid]}
