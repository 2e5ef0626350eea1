"""Deprecated path of the flat layout, kept for one release: import from :mod:`scouter_local.data`."""

from scouter_local._exports import deprecated_module

__getattr__ = deprecated_module(
    __name__,
    ("scouter_local.data.cells",),
)
