"""The demo's report: what was run, the benchmark, neighbours and explanations."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scouter_local.benchmarking.results import MethodResult
from scouter_local.benchmarking.tables import GROUP_HELP, benchmark_frame, overview_frame, signal_frame
from scouter_local.data.perturbation import PerturbationData
from scouter_local.data.splits import SUBGROUPS
from scouter_local.datasets import PUBLISHED_NORMAN
from scouter_local.evaluation.results import CEILING
from scouter_local.reporting.document import Document
from scouter_local.workflows.stages import finish_document, result_to_dict

PUBLISHED_SUBGROUPS = {"single": "single", "seen0": "combo_seen0", "seen1": "combo_seen1", "seen2": "combo_seen2"}


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
    effect
        Effect detection on the Replogle file (empty when its genes were not embedded): ``file``, ``label``,
        ``model`` and ``well_studied`` (the ``detection`` blocks), ``note``, ``table`` (the printed block),
        ``plot``, ``effect_model`` (the ranking model in words) and ``ranking`` (``rank --json`` of the most likely
        unmeasured genes).
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
    effect: dict = field(default_factory=dict)
    split: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    report: dict[str, str] = field(default_factory=dict)

    def result(self, method: str) -> MethodResult | None:
        return next((r for r in self.results if r.method == method), None)

    def to_dict(self) -> dict:
        """JSON-ready dict (benchmark results as their ``summary.json`` entries)."""
        return result_to_dict(self)


def published_frame(path: str | os.PathLike) -> pd.DataFrame:
    """The Scouter authors' per-condition Norman results summarised per method and subgroup.

    Parameters
    ----------
    path
        The data folder's :data:`~scouter_local.datasets.PUBLISHED_NORMAN` (columns ``NormMSE, 1-PCC, split,
        subgroup, Method``).

    Returns
    -------
    Columns ``method, group, n, NormMSE mean, NormMSE median, Pearson Δ top-20`` (= 1 − mean of ``1-PCC``),
    groups renamed to this project's subgroup names.
    """
    table = pd.read_csv(path)
    table["group"] = table["subgroup"].map(PUBLISHED_SUBGROUPS).fillna(table["subgroup"])
    rows = []
    for method, frame in table.groupby("Method", sort=False):
        for group, part in [("overall", frame), *((g, frame[frame["group"] == g]) for g in SUBGROUPS)]:
            if len(part):
                rows.append(
                    {
                        "method": method,
                        "group": group,
                        "n": len(part),
                        "NormMSE mean": float(part["NormMSE"].mean()),
                        "NormMSE median": float(part["NormMSE"].median()),
                        "Pearson Δ top-20": float(1 - part["1-PCC"].mean()),
                    }
                )
    return pd.DataFrame(rows)


def _pick_conditions(test: Sequence[str], subgroup_of: dict[str, str], n: int = 4) -> list[str]:
    """Up to ``n`` test conditions, one per subgroup first, then in split order."""
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
        The data folder's :data:`~scouter_local.datasets.PUBLISHED_NORMAN` for the context table, or ``None``.

    Returns
    -------
    ``{"markdown": path, "html": path, "plots": [paths]}``.
    """
    plots = Path(result.out) / "plots"
    doc = Document("scouter-local demo report")
    _run_section(doc, result)
    figures = [_benchmark_section(doc, result, plots)]
    figures += _signal_section(doc, result, plots)
    if published is not None:
        _published_section(doc, published)
    figures += _top20_section(doc, result, data, plots)
    _explanation_section(doc, result)
    figures += _effect_section(doc, result)
    _neighbour_section(doc, result)
    _run_time_section(doc, result)
    _details_section(doc, result)
    return {**finish_document(doc, Path(result.out)), "plots": figures}


def _predictors(result: DemoResult) -> list[MethodResult]:
    """The benchmarked methods' results, without the noise ceiling."""
    return [r for r in result.results if r.method != CEILING]


def _run_section(doc: Document, result: DemoResult) -> None:
    """What was run: the data folder, corpus, model and set, the run time, and which genes were embedded."""
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


def _benchmark_section(doc: Document, result: DemoResult, plots: Path) -> Path:
    """The benchmark on the Norman subset: the setting, the best method, the plot by subgroup, the overview table.

    Returns
    -------
    The plot's path.
    """
    from scouter_local.reporting.plots import group_grid, save_figure

    default = result.methods[0]
    doc.heading("Benchmark on the Norman 2019 subset")
    best = min(_predictors(result), key=lambda r: r.evaluation.mean("normmse") or np.inf)
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
    return grid


def _signal_section(doc: Document, result: DemoResult, plots: Path) -> list[Path]:
    """Real against row-permuted embeddings, where a method was tested.

    Returns
    -------
    The plot's path, or none.
    """
    from scouter_local.reporting.plots import save_figure, signal_bars

    signals = signal_frame(result.results)
    if not len(signals):
        return []
    doc.heading("Do the embeddings carry signal here?")
    tested = signals[signals["block"] == "overall"]
    ax = signal_bars(tested, title=f"Real vs row-permuted {result.set_name} embeddings")
    plot = save_figure(ax.figure, plots / "signal.png")
    doc.paragraph(
        "Each embedding-using method was also trained on the same genes with their vectors row-permuted "
        f"({len(result.results[0].shuffled)} seeded permutations) and scored on the same test conditions; a "
        "paired one-sided sign-flip test over those conditions says whether the real embeddings beat their "
        "shuffled copies."
    )
    doc.image(plot, "Mean score with real and with shuffled embeddings; p-value and verdict above.")
    doc.table(signals, "Real vs shuffled embeddings (delta > 0: real better).")
    return [plot]


def _published_section(doc: Document, published: str | os.PathLike) -> None:
    """The Scouter authors' published Norman results, marked as context only."""
    doc.table(
        published_frame(published),
        "For context only — a different split and setting: published per-condition results of the "
        f"Scouter authors (Zhu & Li 2025, `{PUBLISHED_NORMAN}`) on the full Norman 2019 "
        "data (about 5,000 genes, GEARS simulation splits, 5 seeds); Pearson Δ top-20 = 1 − mean(1-PCC). "
        "Not comparable number for number with the table above.",
    )


def _top20_section(doc: Document, result: DemoResult, data: PerturbationData, plots: Path) -> list[Path]:
    """Observed and predicted top-20 DE gene changes of a few test conditions of the first seed (the default
    method, Scouter and the two best baselines).

    Returns
    -------
    The plot's path, or none when the split has no test condition.
    """
    from scouter_local.reporting.plots import save_figure, top20_panel

    default, seed = result.methods[0], result.seeds[0]
    methods = _predictors(result)
    subgroup_of = {c["condition"]: c["subgroup"] for c in methods[0].runs[0]["conditions"]}
    chosen = _pick_conditions(result.split["test"], subgroup_of)
    if not chosen:
        return []
    baselines = sorted(
        (r for r in methods if r.method not in (default, "scouter", "no_change")),
        key=lambda r: r.evaluation.mean("normmse") or np.inf,
    )
    shown = [r for r in methods if r.method in (default, "scouter")] + baselines[:2]
    fig = top20_panel(
        data,
        chosen,
        {r.method: {c: np.asarray(v) for c, v in r.runs[0]["predictions"].items()} for r in shown},
        scores={r.method: _first_seed_scores(r) for r in shown},
        subgroups=subgroup_of,
    )
    plot = save_figure(fig, plots / f"top20_seed{seed}.png")
    doc.image(
        plot,
        f"Split seed {seed}: observed and predicted changes on the top-20 DE genes of test "
        f"conditions ({', '.join(r.method for r in shown)}; the two best baselines by mean "
        "NormMSE).",
    )
    return [plot]


def _explanation_section(doc: Document, result: DemoResult) -> None:
    """Each explained test condition's nearest trained perturbations and genes."""
    default, seed = result.methods[0], result.seeds[0]
    doc.heading("Why a prediction: nearest trained perturbations")
    doc.paragraph(
        f"For each test condition of split seed {seed}, the training conditions nearest to it in the "
        f"`{result.set_name}` embedding space (cosine of the summed gene embeddings, as Scouter reads them; "
        "FAISS inner product on normalised vectors) and, per gene, the nearest genes that training saw. The same "
        "explanation is available from Python (`scouter_local.explain.explain_predictor`)."
    )
    scores = {r.method: _first_seed_scores(r) for r in _predictors(result) if r.method in (default, "scouter")}
    doc.table(_explanation_rows(result.explanations, scores))


def _effect_section(doc: Document, result: DemoResult) -> list[Path]:
    """Which unmeasured genes would do something: effect detection on the Replogle file beside its baselines, in
    words, as a table and a figure, and the top of the ranking with each gene's nearest measured genes.

    Returns
    -------
    The figure's path, or none.
    """
    effect = result.effect
    doc.heading("Which unmeasured genes would do something?")
    if not effect:
        doc.paragraph(
            "Not run: the Replogle K562 screen's genes were not embedded (run the demo with `--screens` including "
            "`replogle`)."
        )
        return []
    doc.paragraph(
        f"A profile says how a perturbation changes expression; first a screen designer wants to know whether it "
        f"changes anything at all. On the Replogle et al. 2022 K562 essential-gene screen (`{effect['file']}`, "
        f"pseudo-bulk), a target has a detectable effect when `{effect['label']}`. The effect model (the perturbed "
        f"gene's `{result.set_name}` embedding → a calibrated probability, its form chosen by cross-validation on "
        "the training targets) ranked the test targets of each split "
        f"(seeds {', '.join(map(str, result.seeds))}), beside the well-studied baseline (how long the gene's corpus "
        "document is, how many GO annotations it has, and where its document came from) and the same model refitted "
        "on row-shuffled copies of the embeddings (the well-studied features kept)."
    )
    model, baseline = effect.get("model"), effect.get("well_studied")
    if model is None:
        doc.paragraph(f"No effect detection: {effect.get('note')}")
        return []
    bullets = [
        f"Effect model: AUROC **{model['auroc']:.3f}**, average precision {model['average_precision']:.3f} at a "
        f"base rate of {model['base_rate']:.3f}; among each split's 25 top-ranked genes "
        f"{model['precision_at']['25']:.0%} have an effect.",
    ]
    if baseline is not None:
        versus = model["vs_well_studied"]
        bullets.append(
            f"Picking well-studied genes: AUROC {baseline['auroc']:.3f}, top 25 {baseline['precision_at']['25']:.0%}; "
            f"the knowledge adds {versus['delta_auroc']:+.3f} AUROC (one-sided DeLong p {versus['p_value']:.3g})."
        )
    if model["shuffled"] is not None:
        bullets.append(
            f"Row-shuffled embeddings: AUROC {model['shuffled']['auroc']:.3f} (p {model['p_value']:.3g}: "
            f"**{model['verdict']}**)."
        )
    alone = model.get("embedding_only")
    if alone is not None:  # the model kept the well-studied features: does the embedding carry signal by itself?
        bullets.append(
            f"The embedding alone (no well-studied features): AUROC {alone['auroc']:.3f}, its row-shuffled copies "
            f"{alone['shuffled']['auroc']:.3f} (p {alone['p_value']:.3g}: **{alone['verdict']}**)."
        )
    bullets.append(
        f"Calibration: Brier {model['brier']:.4f} against {model['brier_base_rate']:.4f} for the base rate; "
        f"ECE {model['ece']:.3f} (a perfectly calibrated model would show {model['ece_floor']:.3f} here)."
    )
    doc.bullets(bullets)
    doc.code(effect["table"])
    figures = []
    if effect.get("plot"):
        figures.append(Path(effect["plot"]))
        doc.image(
            figures[0],
            "Left: share with a detectable effect among the top N of each split's ranking (dashed: well-studied "
            "genes first; dotted: random order). Right: predicted probability against the observed share, pooled over "
            "the splits (dotted: perfect calibration).",
        )
    ranking = effect.get("ranking")
    if ranking:
        doc.paragraph(
            f"Trained on all of the screen's targets ({effect['effect_model']}), the model ranks the "
            f"`{result.set_name}` genes the screen did not measure. Each comes with its nearest measured genes "
            "(cosine; whether perturbing them had an effect, and its log signal-to-noise): the evidence behind its "
            f"probability. {len(ranking['not_ranked'])} gene(s) could not be ranked (listed by `scouter-local rank`)."
        )
        doc.table(_ranking_rows(ranking["ranked"]), "The most likely unmeasured genes to have a detectable effect.")
    return figures


def _ranking_rows(ranked: Sequence[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "rank": r["rank"],
                "gene": r["symbol"],
                "P(effect)": r["p_effect"],
                "predicted strength": r["strength"],
                "well-studied P(effect)": r["well_studied"],
                "nearest measured genes (cosine, effect, strength)": "; ".join(
                    f"{n['symbol']} {n['cosine']:.2f} {'effect' if n['label'] else 'none'} {n['strength']:.2f}"
                    for n in r["neighbours"]
                ),
            }
            for r in ranked
        ]
    )


def _neighbour_section(doc: Document, result: DemoResult) -> None:
    """The showcase genes' nearest genes and the set's GO neighbour quality."""
    q = result.go_quality
    doc.heading("Gene neighbours in the embedding space")
    doc.table(
        _neighbour_rows(result.neighbors),
        f"Nearest genes of a few genes among the {result.embed.get('genes')} embedded genes "
        "(flat FAISS index, cosine); old symbols are resolved through the corpus.",
    )
    if q.get("share_go_bp") is not None:
        doc.paragraph(
            f"Neighbour quality: {q['share_go_bp']:.1%} of the top-{q['k']} neighbours of a gene share a GO Biological "
            f"Process term with it, against {q['random_share_go_bp']:.1%} for random genes (enrichment "
            f"{q['enrichment']:.2f}×; {q['genes']} genes with a BP annotation)."
        )


def _run_time_section(doc: Document, result: DemoResult) -> None:
    """Wall time per stage, where the full outputs are, and the benchmark's printed table."""
    out = Path(result.out)
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


def _details_section(doc: Document, result: DemoResult) -> None:
    """Every method's metrics per subgroup."""
    doc.heading("Details per subgroup")
    doc.table(
        benchmark_frame(result.results).drop(columns="set"),
        "Per method and subgroup: NormMSE mean/median, mean Pearson Δ, mean direction accuracy.",
    )
