"""Scouter (Zhu & Li, Nat Comput Sci 2025) as scvi-tools keeps a model apart: the network (no AnnData), its
data loader, its training loop and the predictor that trains and uses them.
"""

from scouter_local._exports import lazy_exports

_NAMES = {
    "ScouterNet": "scouter_local.predictors.scouter.network",
    "gears_loss": "scouter_local.predictors.scouter.network",
    "TrainingPlan": "scouter_local.predictors.scouter.training",
    "ScouterPredictor": "scouter_local.predictors.scouter.model",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
