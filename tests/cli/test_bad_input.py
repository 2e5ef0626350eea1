"""The bad-input sweep: one table of every bad input tried across the command line and the error it gives.

Each case runs ``scouter-local ARGS`` and must end with exit status 1, exactly one stderr line starting
``error:`` that contains the expected text (the last line), and no traceback. ``{name}`` in the arguments is a
file or folder made by the ``bad`` fixture. The count of cases is printed (``pytest -s``) and checked below.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import duckdb
import numpy as np
import pytest
from click.testing import CliRunner

from scouter_local.cli import main
from scouter_local.embedding.store import finalise
from tests._realdata import MINILM, SET
from tests.conftest import copy_db

from .conftest import NORMAN_OPTS, cli

NORMAN = ("--condition-key", "condition", "--control", "control", "--single-format", "bare")
NORMAN19 = (*NORMAN, "--subset", "dataset=norman19")


@dataclass(frozen=True)
class Case:
    """One bad input: what it is, the ``scouter-local`` arguments, and text the one-line error must contain."""

    what: str
    args: tuple[str, ...]
    expected: str


def _train(*extra: str, data: str = "{norman}", set_name: str = SET) -> tuple[str, ...]:
    return ("train", "--data", data, "--db", "{db}", "--set", set_name, "--out", "{tmp}/never", *extra)


CASES: list[Case] = [
    # ---- corpus files
    Case(
        "corpus file: truncated gzip",
        ("corpus", "import", "--db", "{fresh}", "{truncated_gz}"),
        "truncated or corrupt gzip",
    ),
    Case("corpus file: wrong columns", ("corpus", "import", "--db", "{fresh}", "{wrong_columns}"), "unknown format"),
    Case("corpus file: empty", ("corpus", "import", "--db", "{fresh}", "{empty}"), "file is empty"),
    Case("corpus file: header only", ("corpus", "import", "--db", "{fresh}", "{header_only}"), "header but no rows"),
    Case("corpus file: unknown format (CSV)", ("corpus", "import", "--db", "{fresh}", "{comma_csv}"), "unknown format"),
    Case(
        "corpus file: duplicate rows",
        ("corpus", "import", "--db", "{fresh}", "{duplicates}"),
        "duplicate row for entrez_id=1",
    ),
    Case(
        "corpus file: row with missing fields",
        ("corpus", "import", "--db", "{fresh}", "{short_row}"),
        "line 3: 2 fields, the header has",
    ),
    Case(
        "corpus file: non-integer Entrez id",
        ("corpus", "import", "--db", "{fresh}", "{bad_id}"),
        "field entrez_id: 'abc' is not an integer id",
    ),
    Case("corpus file: invalid JSON", ("corpus", "import", "--db", "{fresh}", "{bad_json}"), "invalid JSON"),
    Case(
        "corpus file: duplicate JSON key", ("corpus", "import", "--db", "{fresh}", "{dup_json}"), "duplicate key 'KLF1'"
    ),
    Case("corpus file: not UTF-8", ("corpus", "import", "--db", "{fresh}", "{latin1}"), "not UTF-8"),
    Case(
        "corpus file: forced format does not fit",
        ("corpus", "import", "--db", "{fresh}", "--format", "go-terms", "{duplicates}"),
        "missing column(s) go_id, term",
    ),
    Case("corpus file: missing", ("corpus", "import", "--db", "{fresh}", "{tmp}/nope.tsv"), "no such file"),
    Case(
        "corpus file: texts before any gene ids",
        ("corpus", "import", "--db", "{fresh}", "{dup_free_json}"),
        "import the gene_ids files",
    ),
    Case("database: not a DuckDB file", ("corpus", "stats", "--db", "{not_duckdb}"), "cannot be opened"),
    Case("database: missing", ("corpus", "stats", "--db", "{tmp}/missing.duckdb"), "does not exist"),
    # ---- genes
    Case(
        "gene: unknown",
        ("corpus", "show", "--db", "{db}", "XYZZY1"),
        "is not a known symbol, alias, Ensembl or Entrez id",
    ),
    Case("gene: misspelt (suggestion)", ("corpus", "show", "--db", "{db}", "KLF11X"), "did you mean"),
    Case("gene: ambiguous alias", ("corpus", "show", "--db", "{db}", "A1"), "is ambiguous: it may be"),
    Case(
        "gene: only unknown genes in --genes list",
        ("embed", "--db", "{db}", "--model", MINILM, "--set", SET, "--genes", "{genes_unknown}"),
        "none of the 2 genes of",
    ),
    Case(
        "gene: empty --genes list",
        ("embed", "--db", "{db}", "--model", MINILM, "--set", SET, "--genes", "{genes_empty}"),
        "names no genes",
    ),
    Case(
        "gene: neighbours of an unknown gene",
        ("neighbors", "--db", "{db}", "--set", SET, "XYZZY1"),
        "is not a known symbol",
    ),
    Case(
        "gene: neighbours of a gene without vector",
        ("neighbors", "--db", "{db}", "--set", SET, "ACTB"),
        "has no vector in set 'minilm'",
    ),
    Case(
        "gene: prediction for an unknown gene",
        ("predict", "--model", "{model}", "--perturbation", "XYZZY1", "--out", "{tmp}/p.csv"),
        "gene XYZZY1 is unknown in the corpus",
    ),
    Case(
        "gene: prediction for a gene without embedding",
        ("predict", "--model", "{model}", "--perturbation", "ACTB", "--out", "{tmp}/p.csv"),
        "has no embedding in set 'minilm'",
    ),
    # ---- conditions
    Case(
        "condition: three genes",
        ("predict", "--model", "{model}", "--perturbation", "KLF1+SET+CEBPE", "--out", "{tmp}/p.csv"),
        "expected 'A', 'A+ctrl' or 'A+B'",
    ),
    Case(
        "condition: only ctrl",
        ("predict", "--model", "{model}", "--perturbation", "ctrl", "--out", "{tmp}/p.csv"),
        "expected 'A', 'A+ctrl' or 'A+B'",
    ),
    Case(
        "condition: --perturbation and --data together",
        ("predict", "--model", "{model}", "--perturbation", "KLF1", "--data", "{norman}", "--out", "{tmp}/p.csv"),
        "not both or neither",
    ),
    Case(
        "condition: control label not given",
        _train("--condition-key", "condition", "--subset", "dataset=norman19"),
        "no control cells with value 'ctrl'; this file has 'control': pass --control control",
    ),
    Case(
        "condition: test ratio out of range",
        _train(*NORMAN19, "--test-ratio", "1.5"),
        "--test-ratio 1.5: expected a fraction",
    ),
    Case(
        "condition: bare singles read as GEARS spelling",
        _train("--condition-key", "condition", "--control", "control", "--subset", "dataset=norman19"),
        "pass --single-format bare",
    ),
    Case(
        "condition: split file names an unknown condition",
        _train("--split", "{bad_split}", *NORMAN19),
        "'NOPE+ctrl' is not in the data",
    ),
    Case("condition: unknown split kind", _train("--split", "random", *NORMAN19), "--split 'random'"),
    Case("condition: malformed --subset", _train("--subset", "dataset", *NORMAN), "expected KEY=VALUE"),
    Case("condition: --subset key absent", _train("--subset", "batch=1", *NORMAN), "--subset key 'batch' not in obs"),
    # ---- models
    Case(
        "model: unknown path",
        ("embed", "--db", "{db}", "--model", "{tmp}/no_such_model", "--set", "x"),
        "no such file or folder",
    ),
    Case(
        "model: missing .gguf file",
        ("embed", "--db", "{db}", "--model", "SmolLM2.Q4_1.gguf", "--set", "x"),
        "no such file or folder",
    ),
    Case(
        "model: unknown name",
        ("embed", "--db", "{db}", "--model", "no-such-model-package", "--set", "x"),
        "is not a local folder, .gguf file or installed package",
    ),
    Case(
        "model: hub id without --allow-download",
        ("embed", "--db", "{db}", "--model", "sentence-transformers/all-MiniLM-L6-v2", "--set", "x"),
        "add --allow-download",
    ),
    Case(
        "model: trust_remote_code folder without the flag",
        ("embed", "--db", "{db}", "--model", "{remote_code}", "--set", "x"),
        "pass --trust-remote-code",
    ),
    Case(
        "model: folder without config.json",
        ("embed", "--db", "{db}", "--model", "{no_config}", "--set", "x"),
        "has no config.json",
    ),
    Case(
        "model: weight file that is not GGUF",
        ("embed", "--db", "{db}", "--model", "{weights_bin}", "--set", "x"),
        "is not a .gguf file",
    ),
    Case(
        "model: set made with another model",
        ("embed", "--db", "{db}", "--model", MINILM, "--set", SET, "--pooling", "cls", "--genes", "{genes_ok}"),
        "was made with other settings",
    ),
    Case("model: unknown method", _train("--method", "gears", *NORMAN19), "method 'gears'"),
    Case(
        "model: output folder exists",
        (
            "train",
            "--data",
            "{norman}",
            "--db",
            "{db}",
            "--set",
            SET,
            "--out",
            "{model}",
            "--method",
            "train_mean",
            *NORMAN19,
        ),
        "exists and is not empty",
    ),
    Case(
        "model: not a model folder",
        ("predict", "--model", "{tmp}", "--perturbation", "KLF1", "--out", "{tmp}/p.csv"),
        "not a model folder",
    ),
    Case(
        "model: corrupt manifest.json",
        ("predict", "--model", "{model_bad_manifest}", "--perturbation", "KLF1", "--out", "{tmp}/p.csv"),
        "manifest.json",
    ),
    Case(
        "model: corrupt model.pt",
        ("predict", "--model", "{model_bad_weights}", "--perturbation", "KLF1", "--out", "{tmp}/p.csv"),
        "model.pt",
    ),
    Case(
        "model: pickled code in model.pt",
        ("predict", "--model", "{model_evil_weights}", "--perturbation", "KLF1", "--out", "{tmp}/p.csv"),
        "model.pt",
    ),
    Case(
        "model: embedding set changed since training",
        ("predict", "--model", "{model_other_db}", "--perturbation", "KLF1", "--out", "{tmp}/p.csv"),
        "use the same set",
    ),
    # ---- embeddings and index
    Case(
        "embeddings: unknown set",
        ("neighbors", "--db", "{db}", "--set", "nope", "KLF1"),
        "embedding set 'nope' is not in",
    ),
    Case(
        "embeddings: invalid set name",
        ("embed", "--db", "{db}", "--model", MINILM, "--set", "../x"),
        "set name '../x' is invalid",
    ),
    Case(
        "embeddings: export of an unknown set",
        ("embeddings", "export", "--db", "{db}", "--set", "nope", "--out", "{tmp}/x.csv"),
        "embedding set 'nope' is not in",
    ),
    Case("index: empty --text", ("neighbors", "--db", "{db}", "--set", SET, "--text", "  "), "--text is empty"),
    Case(
        "index: neighbours with k < 1",
        ("neighbors", "--db", "{db}", "--set", SET, "KLF1", "-k", "0"),
        "k must be at least 1",
    ),
    Case(
        "index: both a gene and --text",
        ("neighbors", "--db", "{db}", "--set", SET, "KLF1", "--text", "erythroid"),
        "not both or neither",
    ),
    Case(
        "index: --text on an imported set (no model)",
        ("neighbors", "--db", "{db}", "--set", "actb", "--text", "erythroid"),
        "has no model to embed text with",
    ),
    # ---- pickles and embedding files
    Case(
        "pickle: reduce calling os.system",
        ("embeddings", "import", "--db", "{db}", "--set", "evil", "{evil_pickle}"),
        "global 'posix.system' is not allowed",
    ),
    Case(
        "pickle: not a dict",
        ("embeddings", "import", "--db", "{db}", "--set", "lst", "{list_pickle}"),
        "expected a non-empty dict",
    ),
    Case(
        "pickle: ragged vectors",
        ("embeddings", "import", "--db", "{db}", "--set", "rag", "{ragged_pickle}"),
        "different lengths",
    ),
    Case(
        "embeddings CSV: a value that is not a number",
        ("embeddings", "import", "--db", "{db}", "--set", "csv", "{bad_csv}"),
        "is not a number",
    ),
    Case(
        "embeddings CSV: NaN", ("embeddings", "import", "--db", "{db}", "--set", "nan", "{nan_csv}"), "NaN or infinite"
    ),
    Case(
        "embeddings file: unknown kind",
        ("embeddings", "import", "--db", "{db}", "--set", "bin", "{weights_bin}"),
        "cannot tell the format",
    ),
    # ---- h5ad layouts
    Case("h5ad: no control cells", _train(*NORMAN, data="{no_control}"), "no control cells with value 'control'"),
    Case(
        "h5ad: wrong condition key",
        _train("--condition-key", "perturbation_name", "--control", "control", "--single-format", "bare"),
        "condition key 'perturbation_name' not in obs",
    ),
    Case("h5ad: condition with one cell", _train(*NORMAN, data="{one_cell}"), "has 1 cell(s), at least 2 needed"),
    Case(
        "h5ad: genes absent from the embeddings", _train(*NORMAN19, set_name="actb"), "has all its genes in set 'actb'"
    ),
    Case("h5ad: not an h5ad file", _train(*NORMAN, data="{empty}"), "not a readable h5ad file"),
    Case("h5ad: truncated file", _train(*NORMAN, data="{truncated_h5ad}"), "not a readable h5ad file"),
    Case("h5ad: missing file", _train(*NORMAN, data="{tmp}/none.h5ad"), "no such file"),
    Case("h5ad: delta file with control rows", _train("--delta", *NORMAN19), "delta file has control rows"),
]

#: Cases that end in a traceback today (files of other helpers); strict, so a fix makes them fail until moved up.


class _Evil:
    """Unpickling this runs ``os.system`` (what a malicious embeddings or weights file does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def bad(data_dir, screen_db, norman_path, tmp_path_factory) -> dict[str, str]:
    """Every bad file of :data:`CASES`, made from the real data; ``{"db": …, "norman": …, …}``."""
    tmp = tmp_path_factory.mktemp("bad")
    p: dict[str, Path] = {"tmp": tmp, "norman": norman_path, "fresh": tmp / "fresh.duckdb", "marker": tmp / "PWNED"}
    p["db"] = copy_db(screen_db, tmp_path_factory.mktemp("bad_db"))

    def write(name: str, data: bytes | str, suffix: str = ".tsv") -> None:
        p[name] = tmp / f"{name}{suffix}"
        p[name].write_bytes(data if isinstance(data, bytes) else data.encode())

    gene_info = (data_dir / "gene_ids/gene_info_human.tsv.gz").read_bytes()
    lines = gzip.decompress(gene_info).decode().splitlines()
    header, row = lines[0], lines[1]
    write("truncated_gz", gene_info[: len(gene_info) // 2], ".tsv.gz")
    write("wrong_columns", "foo\tbar\n1\t2\n")
    write("empty", b"")
    write("header_only", header + "\n")
    write("comma_csv", "entrez_id,symbol\n1,A1BG\n")
    write("duplicates", "\n".join([header, row, row]) + "\n")
    write("short_row", "\n".join([header, row, "\t".join(row.split("\t")[:2])]) + "\n")
    write("bad_id", "\n".join([header, "abc" + row[row.index("\t") :]]) + "\n")
    write("bad_json", '{"KLF1": "Gene Symbol KLF1", ', ".json")
    write("dup_json", '{"KLF1": "a", "KLF1": "b"}', ".json")
    write("dup_free_json", '{"KLF1": "Gene Symbol KLF1 a transcription factor"}', ".json")
    write("latin1", "gene\ttext\nKLF1\tcaf\xe9\n".encode("latin-1"))
    write("not_duckdb", "this is not a database\n", ".duckdb")
    write("genes_unknown", "XYZZY1\nXYZZY2\n", ".txt")
    write("genes_empty", "# nothing\n", ".txt")
    write("genes_ok", "KLF1\n", ".txt")
    write("bad_split", json.dumps({"train": ["KLF1+ctrl"], "val": [], "test": ["NOPE+ctrl"]}), ".json")
    write("bad_csv", ",0,1\nKLF1,0.1,x\n", ".csv")
    write("nan_csv", ",0,1\nKLF1,0.1,nan\n", ".csv")
    write("weights_bin", b"\x00" * 64, ".bin")

    for name, folder in (
        (
            "remote_code",
            {"config.json": json.dumps({"model_type": "bert", "auto_map": {"AutoModel": "modeling_evil.EvilModel"}})},
        ),
        ("no_config", {"README.md": "weights elsewhere"}),
    ):
        p[name] = tmp / name
        p[name].mkdir()
        for f, text in folder.items():
            (p[name] / f).write_text(text)
    for name, obj in (
        ("evil_pickle", {"KLF1": _Evil(p["marker"])}),
        ("list_pickle", [1.0, 2.0]),
        ("ragged_pickle", {"KLF1": [0.1, 0.2], "SET": [0.3]}),
    ):
        p[name] = tmp / f"{name}.pkl"
        p[name].write_bytes(pickle.dumps(obj))

    # h5ad layouts, from the real Norman cells
    a = ad.read_h5ad(norman_path)
    a = a[a.obs["dataset"] == "norman19"].copy()
    p["no_control"] = tmp / "no_control.h5ad"
    a[a.obs["condition"] != "control"].copy().write_h5ad(p["no_control"])
    first = a.obs["condition"][a.obs["condition"] != "control"].iloc[0]
    keep = (a.obs["condition"] != first).to_numpy()
    keep[np.flatnonzero(~keep)[0]] = True
    p["one_cell"] = tmp / "one_cell.h5ad"
    a[keep].copy().write_h5ad(p["one_cell"])
    write("truncated_h5ad", norman_path.read_bytes()[:20_000], ".h5ad")

    # an imported set holding only ACTB (no screen gene), and models
    runner = CliRunner()
    actb = tmp / "actb.csv"
    actb.write_text(",0,1\nACTB,0.1,0.2\n")
    assert (
        runner.invoke(main, ["embeddings", "import", "--db", str(p["db"]), "--set", "actb", str(actb)]).exit_code == 0
    )
    p["model"] = tmp / "model"
    trained = cli(
        "train",
        "--data",
        norman_path,
        "--db",
        p["db"],
        "--set",
        SET,
        "--out",
        p["model"],
        "--method",
        "train_mean",
        *NORMAN_OPTS,
    )
    assert trained.returncode == 0, trained.stderr
    for name, damage in (
        ("model_bad_manifest", {"manifest.json": b"{not json"}),
        ("model_bad_weights", {"model.pt": b"\x00garbage"}),
        ("model_evil_weights", {"model.pt": pickle.dumps(_Evil(p["marker"]))}),
    ):
        p[name] = tmp / name
        shutil.copytree(p["model"], p[name])
        for f, data in damage.items():
            (p[name] / f).write_bytes(data)
    # a model whose database's set was re-imported with other vectors
    p["model_other_db"] = tmp / "model_other_db"
    shutil.copytree(p["model"], p["model_other_db"])
    other_db = copy_db(screen_db, tmp_path_factory.mktemp("other_db"))
    manifest = json.loads((p["model"] / "manifest.json").read_text())
    manifest["db"] = str(other_db)
    (p["model_other_db"] / "manifest.json").write_text(json.dumps(manifest))
    with duckdb.connect(str(other_db)) as con:
        con.execute(
            "UPDATE embedding_vectors SET vector = list_transform(vector, lambda x: x * 2) WHERE set_name = ?", [SET]
        )
        finalise(con, SET)  # as a finished re-import leaves it (an unfinished one is refused as incomplete)
    return {k: str(v) for k, v in p.items()}


def _one_error_line(stderr: str) -> str:
    """The single ``error:`` line of stderr, which must be its last line, with no traceback anywhere."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert "Traceback" not in stderr, stderr
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    return errors[0]


@pytest.mark.parametrize("case", CASES, ids=[c.what for c in CASES])
def test_bad_input_gives_one_line_error(case: Case, bad: dict[str, str]) -> None:
    args = [a.format(**bad) for a in case.args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (
        f"{case.what}: exit {result.exit_code}, {result.exception!r}\n{result.output}"
    )
    line = _one_error_line(result.stderr)
    assert case.expected in line, f"{case.what}: {line}"
    assert not Path(bad["marker"]).exists(), f"{case.what}: a pickle ran code"
    print(f"{case.what}\t{line}")


def test_left_out_conditions_are_one_warning_line_then_the_error(bad: dict[str, str]) -> None:
    """In a real process (pytest does not swallow the warning): one ``warning:`` line naming 5 of the 33
    conditions left out and what to do, no source location, then the one-line error."""
    args = [a.format(**bad) for a in _train(*NORMAN19, set_name="actb")]
    done = cli(*args)
    assert done.returncode == 1
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 2 and "UserWarning" not in done.stderr, done.stderr
    assert lines[0].startswith("warning: 33 condition(s) left out: ") and "; and 28 more (" in lines[0], lines[0]
    assert (
        len(re.findall(r"[\w-]+\+[\w-]+: gene ", lines[0])) == 5
        and "add its genes to the file imported as set 'actb'" in lines[0]
    )
    assert lines[1] == _one_error_line(done.stderr)


def test_sweep_size() -> None:
    """The sweep covers every kind of input the issue names (the count goes in the closing note)."""
    kinds = {c.what.split(":")[0].split(" ")[0] for c in CASES}
    assert {"corpus", "gene", "condition", "model", "index", "pickle", "h5ad"} <= kinds
    print(f"bad-input cases: {len(CASES)}")
    assert len(CASES) >= 60


def test_mismatched_index_is_rebuilt_or_refused(screen_db, tmp_path) -> None:
    """An index folder built for other vectors: ``neighbors`` rebuilds it (the set is the truth); the library
    refuses it with a one-line error when asked not to rebuild."""
    from gene_corpus.errors import InputError
    from scouter_local.index import NeighborIndex, index_dir

    db = copy_db(screen_db, tmp_path)
    query = ["neighbors", "--db", str(db), "--set", SET, "KLF1", "-k", "3", "--json"]
    first = CliRunner().invoke(main, query)
    assert first.exit_code == 0, first.output
    manifest = json.loads((index_dir(db, SET) / "manifest.json").read_text())
    manifest["set_fingerprint"] = "0" * 32
    (index_dir(db, SET) / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="was built for set 'minilm' with fingerprint 0000"):
        NeighborIndex.open(db, SET, rebuild=False)
    result = CliRunner().invoke(main, query)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(first.stdout)
    assert json.loads((index_dir(db, SET) / "manifest.json").read_text())["set_fingerprint"] != "0" * 32


def test_damaged_index_file_is_rebuilt(screen_db, tmp_path) -> None:
    """A damaged ``index.faiss`` (manifest intact) is rebuilt from the set, like a stale one."""
    from scouter_local.index import INDEX_FILE, index_dir

    db = copy_db(screen_db, tmp_path)
    query = ["neighbors", "--db", str(db), "--set", SET, "KLF1", "-k", "3", "--json"]
    first = CliRunner().invoke(main, query)
    assert first.exit_code == 0, first.output
    (index_dir(db, SET) / INDEX_FILE).write_bytes(b"\x00" * 100)
    again = CliRunner().invoke(main, query)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == json.loads(first.stdout)
