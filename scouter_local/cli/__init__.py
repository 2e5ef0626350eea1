"""The ``scouter-local`` command line: a thin click layer, one library call per command.

Each command group lives in its own module and is registered here. Any :class:`InputError` (and the
other user-facing failures listed in :func:`_user_error`) ends the command with one line ``error: …`` and
exit status 1, never a traceback; a warning is one line ``warning: …``.
"""

from __future__ import annotations

import sys
import warnings

import click

from gene_corpus.errors import InputError


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """``warnings.formatwarning`` for the command line: the message only, no source location."""
    return f"warning: {message}\n"


class _Group(click.Group):
    """A click group that turns user errors into one line on stderr and exit status 1, warnings into one line."""

    def invoke(self, ctx: click.Context):
        formatter, warnings.formatwarning = warnings.formatwarning, _one_line_warning
        try:
            return super().invoke(ctx)
        except InputError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("error: interrupted; nothing half-written was kept, rerun to resume", err=True)
            sys.exit(130)
        finally:
            warnings.formatwarning = formatter


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="scouter-local")
def main() -> None:
    """scouter-local: gene corpus, local embeddings, neighbours and perturbation prediction, offline.

    Example: scouter-local demo --out demo_out
    """


def _register() -> None:
    import importlib

    for module in ("gene_corpus.cli", "scouter_local.cli.embed", "scouter_local.cli.predict", "scouter_local.cli.demo",
                   "scouter_local.cli.bundle"):
        for command in importlib.import_module(module).COMMANDS:
            main.add_command(command)


_register()
