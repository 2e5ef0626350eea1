"""Condition spelling (``ctrl``, ``A+ctrl``, ``A+B`` with genes sorted), as GEARS and Scouter write it."""

from __future__ import annotations

import pytest

from gene_corpus.errors import InputError
from scouter_local.conditions import CTRL, condition_of, genes_in, genes_of, is_single, spell_condition, split_raw


def test_genes_and_conditions():
    assert genes_of("KLF1+ctrl") == ["KLF1"] and genes_of("SET+KLF1") == ["SET", "KLF1"] and genes_of(CTRL) == []
    assert condition_of(["KLF1"]) == "KLF1+ctrl" and condition_of(["SET", "KLF1"]) == "KLF1+SET"
    assert is_single("KLF1+ctrl") and not is_single("KLF1+SET")
    assert genes_in(["SET+KLF1", "KLF1+ctrl", "CBL+ctrl"]) == ["CBL", "KLF1", "SET"]
    assert split_raw(" A + B ") == ["A", "B"] and split_raw("A+ctrl") == ["A"]
    with pytest.raises(InputError, match="names no gene"):
        condition_of([])


@pytest.mark.parametrize(
    "raw, options, spelled",
    [
        ("non-targeting", {"control": "non-targeting", "single_format": "bare"}, CTRL),
        ("STAT1", {"control": "ctrl", "single_format": "bare"}, "STAT1+ctrl"),
        ("SET+KLF1", {"control": "ctrl", "single_format": "gears"}, "KLF1+SET"),
        ("KLF1+ctrl", {"control": "ctrl", "single_format": "gears"}, "KLF1+ctrl"),
        (" KLF1 ", {"control": "ctrl", "single_format": "bare"}, "KLF1+ctrl"),
    ],
)
def test_spellings(raw, options, spelled):
    assert spell_condition(raw, where="obs['c']", **options) == spelled


def test_bad_spellings_name_where_and_the_fix():
    with pytest.raises(InputError, match="'KLF1' in obs\\['c'\\] is a bare gene.*pass single_format='bare'"):
        spell_condition("KLF1", control="ctrl", single_format="gears", where="obs['c']")
    with pytest.raises(InputError, match="condition '\\+' in obs\\['c'\\] names no gene"):
        spell_condition("+", control="ctrl", single_format="bare", where="obs['c']")
