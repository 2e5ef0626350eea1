"""AnnData → :class:`PerturbationData`: reading options, reading cells or pseudo-bulk deltas, per-condition
statistics, DE genes, genes → embedding rows, splits and subgroups, the effect label of each condition and how
well studied each gene is.
"""

from scouter_local._exports import lazy_exports

_NAMES = {
    "DataOptions": "scouter_local.data.options",
    "parse_subset": "scouter_local.data.options",
    "PerturbationData": "scouter_local.data.perturbation",
    "BACKED_BYTES": "scouter_local.data.read",
    "spell_conditions": "scouter_local.data.read",
    "numeric_obs_column": "scouter_local.data.read",
    "condition_means": "scouter_local.data.read",
    "condition_values": "scouter_local.data.read",
    "read_obs_column": "scouter_local.data.read",
    "obs_condition_values": "scouter_local.data.read",
    "perturbation_data": "scouter_local.data.read",
    "read_perturbation_data": "scouter_local.data.read",
    "CHUNK_VALUES": "scouter_local.data.cells",
    "CellMatrix": "scouter_local.data.cells",
    "to_dense": "scouter_local.data.cells",
    "to_array": "scouter_local.data.cells",
    "ConditionStats": "scouter_local.data.cells",
    "condition_stats": "scouter_local.data.cells",
    "N_TOP_DE": "scouter_local.data.de",
    "compute_de_genes": "scouter_local.data.de",
    "Resolution": "scouter_local.data.link",
    "Resolver": "scouter_local.data.link",
    "resolve_genes": "scouter_local.data.link",
    "load_embeddings": "scouter_local.data.link",
    "prepare_data": "scouter_local.data.link",
    "condition_rows": "scouter_local.data.link",
    "condition_vectors": "scouter_local.data.link",
    "EffectLabel": "scouter_local.data.effect",
    "threshold_label": "scouter_local.data.effect",
    "etest_label": "scouter_local.data.effect",
    "effect_label": "scouter_local.data.effect",
    "well_studied_table": "scouter_local.data.well_studied",
    "SPLIT_KINDS": "scouter_local.data.splits",
    "SUBGROUPS": "scouter_local.data.splits",
    "Split": "scouter_local.data.splits",
    "scouter_split": "scouter_local.data.splits",
    "simulation_split": "scouter_local.data.splits",
    "make_split": "scouter_local.data.splits",
    "subgroup": "scouter_local.data.splits",
}
__all__ = sorted(_NAMES)
#: Names of the flat ``scouter_local.data`` module that are fixtures of the shared data folder now.
_MOVED = {n: "scouter_local.datasets" for n in ("Preset", "PRESETS", "REQUIRED_FILES", "CORPUS_FILES", "find_data_dir")}
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, moved=_MOVED)
