"""Whole flows built from shared stages: the demo and compare-models."""

from scouter_local._exports import lazy_exports

_NAMES = {
    "ATTRIBUTION": "scouter_local.datasets",
    "DEFAULT_MODEL": "scouter_local.workflows.stages",
    "DEFAULT_SET": "scouter_local.workflows.stages",
    "CORPUS_FOLDERS": "scouter_local.datasets",
    "GO_K": "scouter_local.workflows.stages",
    "Stages": "scouter_local.workflows.stages",
    "screen_genes": "scouter_local.workflows.stages",
    "resolve_to_ids": "scouter_local.workflows.stages",
    "model_set_name": "scouter_local.workflows.stages",
    "go_bp_annotations": "scouter_local.workflows.stages",
    "import_corpus": "scouter_local.workflows.stages",
    "embed_genes": "scouter_local.workflows.stages",
    "benchmark_sets": "scouter_local.workflows.stages",
    "neighbour_quality": "scouter_local.workflows.stages",
    "finish_document": "scouter_local.workflows.stages",
    "result_to_dict": "scouter_local.workflows.stages",
    "write_report": "scouter_local.workflows.stages",
    "N_NEIGHBORS": "scouter_local.workflows.demo",
    "N_EXPLAINED": "scouter_local.workflows.demo",
    "DEMO_STAGES": "scouter_local.workflows.demo",
    "run_demo": "scouter_local.workflows.demo",
    "PUBLISHED_SUBGROUPS": "scouter_local.workflows.demo_report",
    "DemoResult": "scouter_local.workflows.demo_report",
    "published_frame": "scouter_local.workflows.demo_report",
    "write_demo_report": "scouter_local.workflows.demo_report",
    "ComparisonResult": "scouter_local.workflows.compare",
    "COMPARE_STAGES": "scouter_local.workflows.compare",
    "compare_models": "scouter_local.workflows.compare",
    "write_comparison_report": "scouter_local.workflows.compare",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
