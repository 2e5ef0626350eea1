"""Reports: a Markdown/HTML :class:`Document` and plots (every plotting function takes ``ax=``)."""

from scouter_local._exports import lazy_exports

_NAMES = {
    "format_value": "scouter_local.reporting.document",
    "Document": "scouter_local.reporting.document",
    "pyplot": "scouter_local.reporting.plots",
    "save_figure": "scouter_local.reporting.plots",
    "top20": "scouter_local.reporting.plots",
    "top20_panel": "scouter_local.reporting.plots",
    "group_grid": "scouter_local.reporting.plots",
    "signal_bars": "scouter_local.reporting.plots",
    "neighbour_quality_bars": "scouter_local.reporting.plots",
    "precision_at_n": "scouter_local.reporting.plots",
    "reliability_diagram": "scouter_local.reporting.plots",
    "MAX_CONDITION_PLOTS": "scouter_local.reporting.plots",
    "write_evaluation_plots": "scouter_local.reporting.plots",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
