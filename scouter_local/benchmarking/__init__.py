"""Benchmarks: methods × embedding sets × seeded splits, each run in its own process beside its shuffled-embedding
control, pooled over seeds, printed as a table.
"""

from scouter_local._exports import lazy_exports

_NAMES = {
    "DEFAULT_RUNNER": "scouter_local.benchmarking.runner",
    "Runner": "scouter_local.benchmarking.runner",
    "own_peak_rss_mib": "scouter_local.runtime",
    "fit_registry_method": "scouter_local.benchmarking.runner",
    "run_one": "scouter_local.benchmarking.runner",
    "main": "scouter_local.benchmarking.runner",
    "MethodResult": "scouter_local.benchmarking.results",
    "DetectionResult": "scouter_local.benchmarking.detection",
    "GROUP_HELP": "scouter_local.benchmarking.tables",
    "benchmark_frame": "scouter_local.benchmarking.tables",
    "overview_frame": "scouter_local.benchmarking.tables",
    "signal_frame": "scouter_local.benchmarking.tables",
    "comparison_table": "scouter_local.benchmarking.tables",
    "gap_metric": "scouter_local.benchmarking.tables",
    "format_table": "scouter_local.benchmarking.tables",
    "detection_frame": "scouter_local.benchmarking.tables",
    "detection_lines": "scouter_local.benchmarking.tables",
    "ranked_by_detection": "scouter_local.benchmarking.tables",
    "DEFAULT_SHUFFLES": "scouter_local.benchmarking.benchmark",
    "parse_seeds": "scouter_local.benchmarking.benchmark",
    "Benchmark": "scouter_local.benchmarking.benchmark",
    "run_benchmark": "scouter_local.benchmarking.benchmark",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, moved={"shuffled_embeddings": "scouter_local.evaluation.signal"})
