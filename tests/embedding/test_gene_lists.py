"""Gene lists with bad entries: resolved whole, every unknown or ambiguous gene in one warning, the rest used.

On the real GenePT key list (1,915 screen symbols, 3 of which the corpus cannot resolve) and a corpus imported
from gene_ids, gene_text and go.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gene_corpus import Corpus
from gene_corpus.gene_lists import resolve_gene_list
from scouter_local.cli import main
from scouter_local.embedding.store import load_embedding_set
from tests._realdata import MINILM
from tests.conftest import copy_db

#: The GenePT keys the corpus cannot resolve, and why.
BAD = {"AC118549.1": "unknown", "QARS": "ambiguous", "RHOXF2BB": "unknown"}


def _run(*args):
    return CliRunner().invoke(main, list(map(str, args)))


def _process(*args) -> subprocess.CompletedProcess:
    """``scouter-local ARGS`` in a real process (pytest would swallow the warning in-process)."""
    env = {**os.environ, "SCOUTER_LOCAL_THREADS": "2", "OMP_NUM_THREADS": "2"}
    return subprocess.run(
        [str(Path(sys.executable).with_name("scouter-local")), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def genept_keys(data_dir) -> list[str]:
    return list(json.loads((data_dir / "gene_text/genept_ncbi_uniprot_perturbed_genes.json").read_text()))


def test_genept_key_list_keeps_1912_genes_and_names_the_3_others_once(go_db, genept_keys):
    with Corpus.open(go_db, read_only=True) as corpus, pytest.warns(UserWarning) as record:
        ids, left_out = resolve_gene_list(corpus, genept_keys, source="genept_keys.txt")
    assert (len(genept_keys), len(ids), len(set(ids))) == (1915, 1912, 1912)
    assert left_out == sorted(BAD, key=genept_keys.index)
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith(
        "3 of 1915 genes of genept_keys.txt left out: AC118549.1 (unknown); "
        "QARS (ambiguous: EPRS1 (2058), QARS1 (5859)); RHOXF2BB (unknown; did you mean RHOXF2B"
    )
    assert message.endswith(
        f"(the other 1912 are used; list every one left out with `scouter-local corpus resolve "
        f"--db {go_db} --unresolved --genes genept_keys.txt`)"
    )


def test_embed_genes_embeds_the_rest_and_warns_once(go_db, genept_keys, tmp_path):
    db = copy_db(go_db, tmp_path)
    keys = genept_keys[::60] + list(BAD)
    genes = tmp_path / "genept_keys.txt"
    genes.write_text("\n".join(keys) + "\n")
    result = _process("embed", "--db", db, "--model", MINILM, "--set", "genept", "--genes", genes, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("warning: ") == 1 and "UserWarning" not in result.stderr
    warning = result.stderr[result.stderr.index("warning: ") :].splitlines()[0]
    assert warning.startswith(f"warning: 3 of {len(keys)} genes of {genes} left out: ")
    assert all(gene in warning for gene in BAD) and "EPRS1 (2058), QARS1 (5859)" in warning
    report = json.loads(result.stdout)
    assert report["genes"] == len(keys) - 3 and report["left_out"] == list(BAD)
    assert len(load_embedding_set(db, "genept").symbols) == len(keys) - 3


def test_many_bad_genes_are_counted_and_listed_by_the_hint(go_db, tmp_path):
    genes = tmp_path / "genes.txt"
    bad = [f"NOTAGENE{i}" for i in range(8)]
    genes.write_text("\n".join(["RPL11", *bad, "RPS19"]) + "\n")
    with Corpus.open(go_db, read_only=True) as corpus, pytest.warns(UserWarning) as record:
        ids, left_out = resolve_gene_list(corpus, ["RPL11", *bad, "RPS19"], source=str(genes))
    assert len(ids) == 2 and left_out == bad and len(record) == 1
    message = str(record[0].message)
    assert message.count("NOTAGENE") == 5 and "; and 3 more (the other 2 are used" in message
    listing = message[message.index("`") + 1 : message.rindex("`")].split()
    result = _run(*listing[1:])  # the command the warning names lists every one left out
    assert result.exit_code == 0, result.output
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == bad

    genes.write_text("\n".join(bad) + "\n")
    result = _run("embed", "--db", go_db, "--model", MINILM, "--set", "x", "--genes", genes)
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith(f"error: none of the 8 genes of {genes} is usable: NOTAGENE0 (unknown")


def test_neighbors_genes_leaves_out_unknown_and_absent_genes(minilm_db):
    result = _process(
        "neighbors",
        "--db",
        minilm_db,
        "--set",
        "minilm",
        "RPL11",
        "--genes",
        "RPS19,NOTAGENE,RPL10,QARS,OR1A1",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert {r["symbol"] for r in json.loads(result.stdout)} == {"RPS19", "RPL10"}
    assert result.stderr.count("warning: ") == 1
    assert result.stderr.startswith("warning: 3 of 5 genes left out: NOTAGENE (unknown")
    assert "QARS (ambiguous: EPRS1 (2058), QARS1 (5859)); OR1A1 (OR1A1, not in set minilm)" in result.stderr
