"""Deprecated path of the flat layout, kept for one release: import from :mod:`scouter_local.embedding`."""

from scouter_local._exports import deprecated_module

__getattr__ = deprecated_module(
    __name__,
    (
        "scouter_local.embedding.models",
        "scouter_local.embedding.spec",
        "scouter_local.embedding.batching",
        "scouter_local.embedding.encoder",
    ),
)
