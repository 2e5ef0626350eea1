"""The embed / embeddings / neighbors commands through click's CliRunner."""

from __future__ import annotations

import json

from click.testing import CliRunner

from scouter_local.cli import main
from tests._realdata import MINILM
from tests.conftest import copy_db


def _run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_embed_neighbors_export_import(minilm_db, subset, tmp_path):
    db = copy_db(minilm_db, tmp_path)
    genes = tmp_path / "genes.txt"
    with_symbols = ["RPL11", "RPL10", "RPS19", "# a comment", "6135"]
    genes.write_text("\n".join(with_symbols) + "\n")
    result = _run("embed", "--db", str(db), "--model", MINILM, "--set", "minilm", "--genes", str(genes), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["computed"], report["cached"], report["genes"]) == (0, 3, 3)

    genes.write_text("RPL11\nC6orf62\n")  # C6orf62: known to the corpus, but no summary or GenePT text
    result = _run("embed", "--db", str(db), "--model", MINILM, "--set", "minilm", "--genes", str(genes))
    assert (
        result.exit_code == 0
        and "set minilm: 1 genes with a text (1 without a text, skipped), 0 computed, 1 cached" in result.stdout
    )

    result = _run("neighbors", "--db", str(db), "--set", "minilm", "RPL11", "-k", "3", "--json")
    rows = json.loads(result.stdout)
    assert result.exit_code == 0 and [r["rank"] for r in rows] == [1, 2, 3]
    assert set(rows[0]) == {"rank", "symbol", "entrez_id", "name", "cosine"}

    result = _run("neighbors", "--db", str(db), "--set", "minilm", "6135", "-k", "3")  # an id: the table says whose
    assert result.stderr == "6135 is RPL11 (Entrez 6135, by entrez)\n"
    assert [line.split()[1] for line in result.stdout.splitlines()] == [r["symbol"] for r in rows]
    assert _run("neighbors", "--db", str(db), "--set", "minilm", "rpl11", "-k", "3").stderr == ""

    result = _run("neighbors", "--db", str(db), "--set", "minilm", "RPL11", "--genes", "RPS19,RPL10,RPL12", "--json")
    assert {r["symbol"] for r in json.loads(result.stdout)} <= {"RPS19", "RPL10", "RPL12"}

    out = tmp_path / "minilm.csv"
    assert (
        _run(
            "embeddings", "export", "--db", str(db), "--set", "minilm", "--format", "scouter-csv", "--out", str(out)
        ).exit_code
        == 0
    )
    assert out.read_text().splitlines()[1].startswith("ctrl,0")
    result = _run("embeddings", "import", "--db", str(db), "--set", "again", str(out))
    assert result.exit_code == 0 and f"{len(subset)} genes x 384" in result.output


def test_bad_input_is_one_line_error(minilm_db, tmp_path):
    db = copy_db(minilm_db, tmp_path)
    result = CliRunner().invoke(main, ["neighbors", "--db", str(db), "--set", "minilm", "RPL1l"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "did you mean" in lines[0]
    result = CliRunner().invoke(main, ["neighbors", "--db", str(db), "--set", "nope", "RPL11"])
    assert result.exit_code == 1 and "sets in it: minilm" in result.output
    result = CliRunner().invoke(main, ["embed", "--db", str(db), "--model", "no/such-model", "--set", "x"])
    assert result.exit_code == 1 and "--allow-download" in result.output
