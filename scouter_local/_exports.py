"""Lazy re-exports for the packages' ``__init__`` files, and the module paths of the flat layout kept for one release.

A package lists its public names and the submodule each lives in; a name is imported on first use, so importing a
package (and the command line's ``--help``) loads neither torch nor pandas.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence


def lazy_exports(
    package: str, names: Mapping[str, str], *, moved: Mapping[str, str] | None = None
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each of ``names`` (name → submodule) is imported on first use;
    each of ``moved`` (name → its new module) still answers, with a :class:`DeprecationWarning`."""
    moved = dict(moved or {})

    def __getattr__(name: str) -> object:
        if name in moved:
            warnings.warn(
                f"{package}.{name} moved to {moved[name]}.{name}; import it from there (the old path goes in the "
                "next release)",
                DeprecationWarning,
                stacklevel=2,
            )
            return getattr(importlib.import_module(moved[name]), name)
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__


def deprecated_module(old: str, new: Sequence[str]) -> Callable[[str], object]:
    """``__getattr__`` of a module of the flat layout: every name is looked up in its ``new`` modules, in order,
    with a :class:`DeprecationWarning` naming where it lives now."""

    def __getattr__(name: str) -> object:
        if name.startswith("__"):  # the import system's and introspection's questions
            raise AttributeError(name)
        for module in new:
            found = importlib.import_module(module)
            if hasattr(found, name):
                warnings.warn(
                    f"{old} is deprecated (the flat layout goes in the next release); import {name} from {module}",
                    DeprecationWarning,
                    stacklevel=2,
                )
                return getattr(found, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    return __getattr__
