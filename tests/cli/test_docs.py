"""Every command is documented: a help text with an ``Example:`` line, and a mention in the README."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from scouter_local.cli import main
from tests.conftest import ROOT


def _commands(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from _commands(command, path + " ")


COMMANDS = sorted(_commands(main), key=lambda item: item[0])


def test_expected_commands_registered():
    names = {path for path, _ in COMMANDS}
    expected = {
        "corpus import",
        "corpus pull",
        "corpus resolve",
        "corpus show",
        "corpus stats",
        "embed",
        "embeddings export",
        "embeddings import",
        "neighbors",
        "train",
        "predict",
        "evaluate",
        "benchmark",
        "demo",
    }
    assert expected <= names, f"missing commands: {sorted(expected - names)}"


@pytest.mark.parametrize("path,command", COMMANDS, ids=[p for p, _ in COMMANDS])
def test_help_has_example(path, command):
    result = CliRunner().invoke(main, [*path.split(), "--help"])
    assert result.exit_code == 0, result.output
    if not isinstance(command, click.Group):
        assert "Example:" in result.output, f"`scouter-local {path} --help` has no Example: line"


@pytest.mark.parametrize("path", [p for p, c in COMMANDS if not isinstance(c, click.Group)])
def test_command_in_readme(path):
    readme = (ROOT / "README.md").read_text()
    assert f"scouter-local {path}" in readme, f"README.md never shows `scouter-local {path}`"
