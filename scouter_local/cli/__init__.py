"""The ``scouter-local`` command line: a thin click layer, one library call per command.

Each command group lives in its own module and is registered here; command modules import only click and the
standard library at load time (the library is imported inside each command), so ``--help`` answers at once.
Any :class:`InputError` ends the command with one line ``error: …`` and exit status 1, never a traceback, with
the library's parameter names (``control='control'``) translated to the command line's flags
(``--control control``); a warning is one line ``warning: …``.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import re
import sys
import warnings

import click

from gene_corpus.errors import InputError

#: Modules whose ``COMMANDS`` list is added to :func:`main`.
COMMAND_MODULES = (
    "gene_corpus.cli",
    "scouter_local.cli.embed",
    "scouter_local.cli.model",
    "scouter_local.cli.rank",
    "scouter_local.cli.benchmark",
    "scouter_local.cli.demo",
    "scouter_local.cli.bundle",
    "scouter_local.cli.doctor",
)
#: ``name=value`` in a library message: a parameter and the value to pass (quoted or bare).
_PARAMETER = re.compile(r"(?<![\w.-])([a-z_][a-z0-9_]*)=('(?:[^'\\]|\\.)*'|\"[^\"]*\"|[^\s;,)]+)")
#: ```name``` in a library message: a parameter named without a value.
_NAMED = re.compile(r"`([a-z_][a-z0-9_]*)`")


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """``warnings.formatwarning`` for the command line: the message only, no source location."""
    return f"warning: {message}\n"


def _walk(command: click.Command):
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from _walk(sub)


#: The command running now (set by every command's callback), whose parameters are translated first.
_RUNNING: contextvars.ContextVar[click.Command | None] = contextvars.ContextVar("running", default=None)


def _params(commands) -> dict[str, click.Parameter]:
    out: dict[str, click.Parameter] = {}
    for command in commands:
        for param in command.params:
            if param.name and (isinstance(param, click.Argument) or param.opts[0].startswith("--")):
                out.setdefault(param.name, param)
    return out


def flags() -> dict[str, click.Parameter]:
    """Library parameter name → the option (or argument) that passes it: the running command's own, then those
    of every other command (first one wins)."""
    running = _RUNNING.get()
    return {**_all_params(), **(_params([running]) if running is not None else {})}


@functools.cache
def _all_params() -> dict[str, click.Parameter]:
    return _params(_walk(main))


def _tracked(command: click.Command) -> click.Command:
    """``command`` with a callback that records it as the running command (for :func:`flags`)."""
    callback = command.callback
    if callback is not None:

        @functools.wraps(callback)
        def run(*args, **kwargs):
            _RUNNING.set(command)
            return callback(*args, **kwargs)

        command.callback = run
    return command


def _shown(param: click.Parameter) -> str:
    """How the command line names a parameter: its long flag, or an argument's metavar (``GENE``)."""
    return param.human_readable_name if isinstance(param, click.Argument) else max(param.opts, key=len)


def _flag_words(match: re.Match) -> str:
    option = flags().get(match[1])
    if not isinstance(option, click.Option):
        return match[0]
    flag = max(option.opts, key=len)
    value = match[2]
    # what to type is unquoted (pass --control control); a value being reported stays quoted (--split 'random')
    instruction = match.string[: match.start()].endswith(("pass ", "use ", "e.g. "))
    if instruction and value[:1] in "'\"" and value[-1:] == value[:1] and " " not in value:
        value = value[1:-1]
    if option.is_flag:
        return flag if value == "True" else next((o for o in option.secondary_opts), flag)
    return f"{flag} {value}"


def cli_message(message: str) -> str:
    """A library message with each ``parameter=value`` that is a command-line option written as ``--flag value``,
    and each parameter named alone (```parameter```) as ``--flag``."""
    message = _PARAMETER.sub(_flag_words, message)
    return _NAMED.sub(lambda m: _shown(flags()[m[1]]) if m[1] in flags() else m[0], message)


class _Group(click.Group):
    """A click group that turns user errors into one line on stderr and exit status 1, warnings into one line."""

    def invoke(self, ctx: click.Context):
        formatter, warnings.formatwarning = warnings.formatwarning, _one_line_warning
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            shown(cli_message(str(message)), category, filename, lineno, file, line)

        warnings.showwarning = show
        try:
            return super().invoke(ctx)
        except InputError as exc:
            click.echo(f"error: {cli_message(str(exc))}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("error: interrupted; nothing half-written was kept, rerun to resume", err=True)
            sys.exit(130)
        finally:
            warnings.formatwarning, warnings.showwarning = formatter, shown


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="scouter-local")
def main() -> None:
    """scouter-local: gene corpus, local embeddings, neighbours and perturbation prediction, offline.

    Example: scouter-local demo --out demo_out
    """


for _module in COMMAND_MODULES:
    for _command in importlib.import_module(_module).COMMANDS:
        main.add_command(_command)
for _command in _walk(main):
    _tracked(_command)
