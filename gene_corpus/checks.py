"""Argument checks shared by every layer: a lone name is one name, whole numbers in a stated range, expected types.

Each check raises an :class:`~gene_corpus.errors.InputError` (or :class:`~gene_corpus.errors.InputTypeError`) whose
one-line message names the parameter, what it got and what it accepts.

>>> names_of("KLF1", "genes"), names_of(["KLF1", 7157], "genes")
(['KLF1'], ['KLF1', '7157'])
>>> check_int(3, "epochs", low=1)
3
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

from gene_corpus.errors import InputError, InputTypeError


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def names_of(value: str | int | Iterable[str | int], name: str, *, as_text: bool = False) -> list[str]:
    """``value`` as a list of names: a lone string (or integer id) is one name, never its characters.

    Parameters
    ----------
    value
        A name, or an iterable of names (strings or integer ids) — a list, tuple, set, NumPy array, pandas Index.
    name
        The parameter, named in errors.
    as_text
        Take any entry as its text (``str(entry)``), e.g. a missing value read from a file, instead of refusing it.

    Raises
    ------
    InputTypeError
        ``None``, a mapping, a non-iterable, or (unless ``as_text``) an entry that is neither a string nor an integer.
    """
    if isinstance(value, str):
        return [value]
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return [str(value)]
    if value is None or isinstance(value, (bytes, dict)) or not isinstance(value, Iterable):
        raise InputTypeError(
            f"{name}={_shown(value)}: expected a name or a list of names (e.g. ['KLF1', 'TP53']), "
            f"not {type(value).__name__}"
        )
    out = []
    for item in value:
        if as_text or (isinstance(item, numbers.Integral) and not isinstance(item, bool)):
            item = str(item)
        if not isinstance(item, str):
            raise InputTypeError(f"{name}: entry {_shown(item)} is a {type(item).__name__}, not a name (a string)")
        out.append(item)
    return out


def check_int(value: object, name: str, *, low: int, high: int | None = None) -> int:
    """``value`` if it is a whole number in ``[low, high]``; else an :class:`InputError` that states the range."""
    accepted = f"a whole number from {low} to {high}" if high is not None else f"a whole number of at least {low}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"{name}={_shown(value)}: expected {accepted}")
    if value < low or (high is not None and value > high):
        raise InputError(f"{name}={value}: expected {accepted}")
    return int(value)


def check_type(value: object, types: type | tuple[type, ...], name: str, expected: str) -> None:
    """An :class:`InputTypeError` unless ``value`` is an instance of ``types``; ``expected`` says what to pass."""
    if not isinstance(value, types):
        raise InputTypeError(f"{name}: expected {expected}, got {type(value).__name__}")
