"""Which open model should we use here? ``compare-models``: the same predictors trained on several embedding sets
of one screen, each beside its shuffled-embedding control, with a neighbour-quality score per set (share of a
gene's top-k neighbours that share a GO Biological Process term with it, against the share for random genes).

"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gene_corpus import Corpus
from gene_corpus.checks import names_of
from gene_corpus.errors import InputError
from gene_corpus.files import atomic_path
from scouter_local.benchmarking.benchmark import DEFAULT_SHUFFLES, check_seeds
from scouter_local.benchmarking.detection import DetectionResult, detection_figure
from scouter_local.benchmarking.results import MethodResult
from scouter_local.benchmarking.tables import (
    benchmark_frame,
    comparison_table,
    detection_frame,
    detection_lines,
    ranked_by_detection,
    signal_frame,
)
from scouter_local.conditions import genes_in
from scouter_local.data.options import DataOptions
from scouter_local.evaluation.strong import StrongTargets
from scouter_local.predictors import method_names
from scouter_local.reporting.document import Document
from scouter_local.workflows.stages import (
    GO_K,
    Stages,
    benchmark_sets,
    embed_genes,
    finish_document,
    model_set_name,
    neighbour_quality,
    resolve_to_ids,
    result_to_dict,
    write_report,
)

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
    detection
        Effect detection per set, where the screen has an effect label (a ``strong`` column, or the E-test of
        single cells).
    block
        The conditions the table is about: ``overall``, or ``strong`` when a strong rule was given.
    table
        Text table: per set and method NormMSE, Pearson Δ, direction, the test against shuffled embeddings and the
        set's neighbour quality; then, with a label, the sets ranked by effect detection.
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
    detection: list[DetectionResult] = field(default_factory=list)
    block: str = "overall"
    table: str = ""
    report: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict (benchmark results as their ``summary.json`` entries)."""
        return result_to_dict(self)


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
    from scouter_local.embedding.store import load_embedding_set

    methods = names_of(methods, "methods") if methods is not None else default_methods()
    set_names = names_of(set_names, "set_names")
    sets, pairs = _sets_to_compare(set_names, names_of(models, "models"), templates)
    seeds = check_seeds(seeds)
    if not Path(db).is_file():
        raise InputError(
            f"db={str(db)!r}: no such database; build it with `scouter-local corpus import` or `scouter-local demo`"
        )
    for name in dict.fromkeys(set_names):
        load_embedding_set(db, name)  # an unknown or unfinished set fails before anything is written
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
        result.embedded = _embed_models(data_path, options, db, pairs, genes=genes, postprocess=postprocess)
    with stages(
        "benchmark", f"training {', '.join(methods)} on {len(sets)} set(s), seeds {', '.join(map(str, seeds))}"
    ):
        _benchmark(result, Path(data_path), options, epochs=epochs, shuffles=shuffles, strong=strong)
    with (
        stages("neighbors", f"GO Biological Process share of the top-{k} neighbours per set"),
        Corpus.open(db, read_only=True) as corpus,
    ):
        result.quality = neighbour_quality(corpus, {s: load_embedding_set(corpus, s) for s in sets}, k=k)
    write_report(
        stages,
        result,
        lambda: _table_and_report(result),
        what=f"writing the comparison into {out}",
        json_path=out / "comparison.json",
    )
    return result


def _sets_to_compare(
    set_names: Sequence[str], models: Sequence[str], templates: Sequence[str]
) -> tuple[list[str], list[tuple[str, str]]]:
    """The sets to compare (``set_names``, then each MODEL × template's set) and the (MODEL, template) pairs."""
    sets = list(dict.fromkeys(set_names))
    pairs = [(m, t) for m in models for t in templates]
    sets += [model_set_name(m, t) for m, t in pairs if model_set_name(m, t) not in sets]
    if len(sets) < 1:
        raise InputError("nothing to compare: pass set_names=NAME (repeatable or comma-separated) and/or models=MODEL")
    return sets, pairs


def _embed_models(
    data_path: str | os.PathLike,
    options: DataOptions,
    db: str | os.PathLike,
    pairs: Sequence[tuple[str, str]],
    *,
    genes: Sequence[str],
    postprocess: str | None,
) -> dict[str, dict]:
    """Each (MODEL, template) of ``pairs`` embedded into its :func:`model_set_name` set: the screen's perturbed genes
    plus ``genes``.

    Returns
    -------
    Set name → ``EmbedReport.to_dict()``.
    """
    from scouter_local.data.read import read_perturbation_data

    if not pairs:
        return {}
    perturbed = genes_in(read_perturbation_data(data_path, options).perturbations)
    with Corpus.open(db, read_only=True) as corpus:
        ids, unresolved = resolve_to_ids(corpus, [*perturbed, *genes])
    if unresolved:
        log.warning(
            "%d gene(s) unknown to the corpus are not embedded: %s", len(unresolved), ", ".join(unresolved[:10])
        )
    return {
        model_set_name(m, t): embed_genes(db, model_set_name(m, t), m, ids, template=t, postprocess=postprocess)
        for m, t in pairs
    }


def _benchmark(
    result: ComparisonResult,
    data_path: Path,
    options: DataOptions,
    *,
    epochs: int | None,
    shuffles: int,
    strong: StrongTargets | None,
) -> None:
    """Benchmark ``result.methods`` on every set, on the conditions every set can embed (``result.dropped``: the
    others), over ``result.seeds`` (``result.results``)."""
    data_path, result.dropped = _common_screen(data_path, options, result.db, result.sets, result.out)
    bench = benchmark_sets(
        data_path,
        options,
        db=result.db,
        set_names=result.sets,
        methods=result.methods,
        seeds=result.seeds,
        out=result.out / "benchmark",
        epochs=epochs,
        shuffles=shuffles,
        strong=strong,
    )
    result.results, result.detection = bench.results, bench.detection


def _table_and_report(result: ComparisonResult) -> dict[str, Path]:
    """The printed table (``result.table``: the comparison, then the sets ranked by effect detection), then
    :func:`write_comparison_report`."""
    result.table = comparison_table(result.results, result.quality, block=result.block, text=True)
    if result.detection:
        result.table += "\n\n" + "\n".join(detection_lines(result.detection))
    return write_comparison_report(result)


def write_comparison_report(result: ComparisonResult) -> dict[str, Path]:
    """``comparison.csv``, ``plots/comparison.png``, ``plots/by_group.png`` (with a label also
    ``plots/detection.png``) and ``comparison.md``/``.html`` into ``result.out``.

    Returns
    -------
    ``{"markdown": path, "html": path, "csv": path, "plots": [paths]}``.
    """
    out = Path(result.out)
    table = comparison_table(result.results, result.quality, block=result.block)
    csv_path = out / "comparison.csv"
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False)
    signals = signal_frame(result.results)
    plots = [_signal_figure(result, signals[signals["block"] == result.block]), _group_figure(result)]
    detected = [d for d in result.detection if d.model is not None]
    if detected:
        plots.append(detection_figure(detected, result.out / "plots" / "detection.png"))
    doc = _comparison_document(result, table, signals, plots)
    return {**finish_document(doc, out, stem="comparison"), "csv": csv_path, "plots": plots}


def _signal_figure(result: ComparisonResult, shown: pd.DataFrame) -> Path:
    """One panel per embedding-using method (real against shuffled embeddings of each set), then the sets' GO
    neighbour quality: ``plots/comparison.png``."""
    from scouter_local.reporting.plots import neighbour_quality_bars, pyplot, save_figure, signal_bars

    methods = list(dict.fromkeys(shown["method"]))
    ncols = min(3, len(methods) + 1)
    nrows = -(-(len(methods) + 1) // ncols)
    width = max(5.5, 0.9 * len(result.sets) + 2)
    fig, axes = pyplot().subplots(nrows, ncols, figsize=(width * ncols, 4.4 * nrows), squeeze=False)
    panels = list(axes.ravel())
    for ax, method in zip(panels, methods):
        signal_bars(shown[shown["method"] == method], ax=ax, label="set", title=f"{method} ({result.block} conditions)")
    neighbour_quality_bars(result.quality, ax=panels[len(methods)])
    for ax in panels[len(methods) + 1 :]:
        ax.set_visible(False)
    fig.suptitle("Real vs row-permuted embeddings per method; GO neighbour quality per set", fontsize=12)
    fig.tight_layout()
    return save_figure(fig, result.out / "plots" / "comparison.png")


def _group_figure(result: ComparisonResult) -> Path:
    """Mean per group of every set and method: ``plots/by_group.png``."""
    from scouter_local.reporting.plots import group_grid, save_figure

    ax = group_grid(
        {f"{r.set}: {r.method}": r.evaluation for r in result.results},
        metric="normmse" if result.block == "overall" else "pearson_delta_top20",
        title="Mean by group, per embedding set and method",
    )
    return save_figure(ax.figure, result.out / "plots" / "by_group.png")


def _comparison_document(
    result: ComparisonResult, table: pd.DataFrame, signals: pd.DataFrame, plots: Sequence[Path]
) -> Document:
    """The comparison's report: the setting, the figures, the table, the signal tests, effect detection and the
    metrics per group."""
    plot, grid = plots[:2]
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
    if result.detection:
        _detection_section(doc, result.detection, plots[2:])
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
    return doc


def _detection_section(doc: Document, detection: Sequence[DetectionResult], plots: Sequence[Path]) -> None:
    """Which knowledge source best tells the perturbations with a detectable effect: the detection table (sets
    ranked by AUROC), its figure, and why a set has none."""
    doc.heading("Which knowledge source tells the perturbations that do something?")
    frame = detection_frame(ranked_by_detection(detection))
    if len(frame):
        doc.paragraph(
            "Per set, the effect model (the perturbed gene's embedding → calibrated probability of a detectable "
            "effect, chosen by cross-validation on the training single genes) on the test single genes of every "
            "split, beside the well-studied baseline (document length, GO annotations, document kind) and the same "
            "model refitted on row-shuffled copies of the set (p: the larger of DeLong's test and the copies' "
            "t-test). AUROC and AP are means over splits; P@N the share with an effect among each split's N "
            "top-ranked genes; Brier and ECE on all test rows."
        )
        doc.table(frame, "Effect detection per set, best AUROC first.")
    for plot in plots:
        doc.image(
            plot,
            "Left: precision among the top N per split (dotted: base rate; dashed: well-studied). Right: "
            "reliability of the pooled probabilities (dotted: perfect calibration).",
        )
    for d in detection:
        if d.model is None:
            doc.paragraph(f"No effect detection on set `{d.set}`: {d.note}")
