"""Scores of predictions: the published metrics, :class:`Evaluation`, the ``strong`` group, the noise ceiling,
the shuffled-embedding control, effect detection, neighbour quality, and explanations of predictions.
"""

from scouter_local._exports import lazy_exports

_NAMES = {
    "METRICS": "scouter_local.evaluation.metrics",
    "HIGHER_IS_BETTER": "scouter_local.evaluation.metrics",
    "condition_metrics": "scouter_local.evaluation.metrics",
    "STRONG": "scouter_local.evaluation.results",
    "GROUPS": "scouter_local.evaluation.results",
    "CEILING": "scouter_local.evaluation.results",
    "Evaluation": "scouter_local.evaluation.results",
    "write_report": "scouter_local.evaluation.results",
    "StrongTargets": "scouter_local.evaluation.strong",
    "read_obs_column": "scouter_local.evaluation.strong",
    "obs_condition_values": "scouter_local.evaluation.strong",
    "evaluate_predictions": "scouter_local.evaluation.scoring",
    "evaluate": "scouter_local.evaluation.scoring",
    "noise_ceiling": "scouter_local.evaluation.ceiling",
    "gap_closed": "scouter_local.evaluation.ceiling",
    "SIGNAL": "scouter_local.evaluation.signal",
    "NO_EVIDENCE": "scouter_local.evaluation.signal",
    "signal_test": "scouter_local.evaluation.signal",
    "shuffled_embeddings": "scouter_local.evaluation.signal",
    "go_neighbor_quality": "scouter_local.evaluation.neighbours",
    "detection_metrics": "scouter_local.evaluation.detection",
    "delong_test": "scouter_local.evaluation.detection",
    "copies_t_test": "scouter_local.evaluation.detection",
    "expected_calibration_error": "scouter_local.evaluation.detection",
    "calibration_bins": "scouter_local.evaluation.detection",
    "ece_floor": "scouter_local.evaluation.detection",
    "precision_at": "scouter_local.evaluation.detection",
    "precision_curve": "scouter_local.evaluation.detection",
    "DEFAULT_K": "scouter_local.evaluation.explain",
    "TrainedNeighbor": "scouter_local.evaluation.explain",
    "Explanation": "scouter_local.evaluation.explain",
    "explain": "scouter_local.evaluation.explain",
    "explain_predictor": "scouter_local.evaluation.explain",
    "format_explanations": "scouter_local.evaluation.explain",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
