"""Deprecated path: atomic writes live in :mod:`gene_corpus.files` now (this module goes in the next release)."""

import warnings

from gene_corpus import files


def __getattr__(name: str) -> object:
    if name.startswith("__"):
        raise AttributeError(name)
    warnings.warn(f"gene_corpus.atomic is deprecated; import {name} from gene_corpus.files", DeprecationWarning, 2)
    return getattr(files, name)
