"""Condition strings, parsed and spelled in one place: ``ctrl``, ``A+ctrl`` (single) and ``A+B`` (combination).

This is the GEARS/Scouter convention every module uses internally; other spellings (``control``, a bare ``A``,
``non-targeting``) are translated by :func:`spell_condition` with explicit options, never guessed.

>>> genes_of("KLF1+ctrl"), genes_of("CEBPA+KLF1")
(['KLF1'], ['CEBPA', 'KLF1'])
>>> condition_of(["KLF1"]), condition_of(["KLF1", "CEBPA"])
('KLF1+ctrl', 'CEBPA+KLF1')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gene_corpus.errors import InputError, OptionError

CTRL = "ctrl"
SEP = "+"


def genes_of(condition: str) -> list[str]:
    """Genes of a condition spelled ``A+ctrl`` / ``A+B`` (``ctrl`` dropped, order kept)."""
    return [g for g in condition.split(SEP) if g != CTRL]


def condition_of(genes: Sequence[str], *, where: str = "a perturbation") -> str:
    """The condition of perturbing ``genes`` together: ``A+ctrl`` for one gene, ``A+B`` (sorted) for several.

    A gene named twice (``A+A``) is an :class:`InputError`: it is neither a single nor a combination. ``where``
    says where the genes come from, in errors.
    """
    if not genes:
        raise InputError(f"{where} names no gene; expected 'A', 'A+ctrl' or 'A+B'")
    twice = next((g for i, g in enumerate(genes) if g in genes[:i]), None)
    if twice is not None:
        raise InputError(
            f"{where} ({SEP.join(genes)}) names gene {twice} twice; a single is '{twice}+{CTRL}', a combination "
            "names different genes"
        )
    return f"{genes[0]}{SEP}{CTRL}" if len(genes) == 1 else SEP.join(sorted(genes))


def is_single(condition: str) -> bool:
    """Whether ``condition`` perturbs one gene (``A+ctrl``)."""
    return len(genes_of(condition)) == 1


def genes_in(conditions: Iterable[str]) -> list[str]:
    """Sorted distinct genes of several conditions."""
    return sorted({g for c in conditions for g in genes_of(c)})


def split_raw(raw: str) -> list[str]:
    """Gene tokens of a condition as written by a user or a file (``"A + B"``, ``"A"``, ``"A+ctrl"``), stripped."""
    return [g.strip() for g in str(raw).split(SEP) if g.strip() and g.strip() != CTRL]


def spell_condition(raw: str, *, control: str, single_format: str, where: str) -> str:
    """Spell one raw condition the GEARS way: ``ctrl``, ``A+ctrl`` or ``A+B`` (genes sorted).

    Parameters
    ----------
    raw
        The value as written in the file.
    control
        The value that marks control cells.
    single_format
        ``gears`` (singles are ``A+ctrl``; a bare ``A`` is an error) or ``bare`` (singles are ``A``).
    where
        Where the value comes from, named in errors (e.g. ``obs['condition']``).
    """
    raw = str(raw).strip()
    if raw == control:
        return CTRL
    genes = split_raw(raw)
    if not genes:
        raise InputError(f"condition {raw!r} in {where} names no gene")
    if len(genes) == 1 and single_format == "gears" and SEP not in raw:
        raise OptionError(
            f"condition {raw!r} in {where} is a bare gene, but singles are expected as 'A+ctrl'",
            "single_format",
            "'bare' for files that spell singles 'A'",
        )
    return condition_of(genes, where=f"condition {raw!r} in {where}")
