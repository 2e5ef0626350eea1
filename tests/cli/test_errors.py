"""Library messages name parameters (``set_names=…``); the command line prints the running command's own flags."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from scouter_local.cli import cli_message, main


def _error(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    return line


@pytest.mark.slow  # compare-models looks for the data folder first
def test_same_parameter_name_gets_the_running_commands_flag(tmp_path):
    """``set_names`` is ``--sets`` for ``embeddings combine`` and ``--set`` for ``compare-models``."""
    db = str(tmp_path / "x.duckdb")
    assert _error(["embeddings", "combine", "--db", db, "--sets", "a", "--set", "b"]).endswith(
        "(e.g. --sets minilm,go)"
    )
    assert "pass --set NAME" in _error(["compare-models", "--db", db, "--out", str(tmp_path / "c")])


def test_translation_rules():
    assert cli_message("x; pass control='control'") == "x; pass --control control"  # what to type: unquoted
    assert cli_message("split='random': expected") == "--split 'random': expected"  # a reported value: quoted
    assert cli_message("pass normalize=True") == "pass --normalize"
    assert cli_message("`strong_key` and `strong_above` go together") == "--strong-key and --strong-above go together"
    assert cli_message("no_such_parameter=1 and `nothing`") == "no_such_parameter=1 and `nothing`"
