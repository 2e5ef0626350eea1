"""Hostile input to the corpus (issue #21): a DuckDB file of another program, a binary gene list, a mygene server
answering with wrong types. Each is one :class:`InputError` line; nothing is written.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from benchmarks.hostile_inputs import corpus_files
from gene_corpus import Corpus
from gene_corpus.errors import InputError
from gene_corpus.gene_lists import read_gene_list
from gene_corpus.mygene import pull
from scouter_local.cli import main
from tests.conftest import SCOUTER_LOCAL


def _foreign_db(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE patients (id INTEGER, name VARCHAR); INSERT INTO patients VALUES (1, 'x')")
    con.close()
    return path


def _tables(path: Path) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return sorted(r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall())
    finally:
        con.close()


def test_import_into_another_programs_database_refused_unless_asked(tmp_path):
    """`corpus import` into a DuckDB file made by another program used to add its tables beside the foreign ones."""
    db = _foreign_db(tmp_path / "other.duckdb")
    files = corpus_files(tmp_path / "files")
    result = CliRunner().invoke(main, ["corpus", "import", "--db", str(db), *map(str, files)])
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: database") and "patients" in line and "--allow-foreign-tables" in line, line
    assert _tables(db) == ["patients"]
    with pytest.raises(InputError, match="allow_foreign_tables=True"):
        Corpus.open(db)
    result = CliRunner().invoke(main, ["corpus", "import", "--db", str(db), "--allow-foreign-tables", *map(str, files)])
    assert result.exit_code == 0, result.output
    assert "patients" in _tables(db) and "genes" in _tables(db)
    with Corpus.open(db) as corpus:  # a corpus now: later writes need no flag
        assert corpus.stats()["genes"] == 10


def test_binary_gene_list_is_one_error(tmp_path):
    """A binary --genes file used to end in a UnicodeDecodeError traceback."""
    path = tmp_path / "genes.txt"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(InputError, match="not a UTF-8 text file"):
        read_gene_list(path)
    path.write_bytes(b"KLF1\n\x00\x00TP53\n")
    with pytest.raises(InputError, match="NUL byte"):
        read_gene_list(path)


class _FixedAnswer:
    """A local HTTP server answering every POST with one JSON body (a mygene.info mirror gone wrong)."""

    def __init__(self, body) -> None:
        payload = json.dumps(body).encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


CDK2 = {"query": "CDK2", "_id": "1017", "entrezgene": 1017, "taxid": 9606, "symbol": "CDK2"}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"symbol": {"x": 1}}, "symbol"),
        ({"name": 5, "summary": 7}, "name"),
        ({"alias": [1, {"a": 2}]}, "alias"),
        ({"ensembl": [1, 2]}, "ensembl"),
        ({"uniprot": {"Swiss-Prot": 5}}, "uniprot"),
        ({"genomic_pos": [1]}, "genomic_pos"),
        ({"entrezgene": [1017, 5]}, "entrezgene"),
        ({"entrezgene": True}, "entrezgene"),
        ({"go": ["GO:1"]}, "go"),
        ({"go": {"BP": {"id": 5, "term": ["x"]}}}, "go.BP"),
    ],
)
def test_mygene_answer_of_wrong_types_is_one_error(tmp_path, change, field):
    """A mygene server answering with wrong types used to end in tracebacks, or store a dict as a symbol."""
    server = _FixedAnswer([{**CDK2, **change}])
    try:
        with Corpus.open(tmp_path / "c.duckdb") as corpus:
            with pytest.raises(InputError, match=rf"mygene record 1017: {field} holds") as info:
                pull(corpus, ["CDK2"], url=server.url, retries=1, delay=0)
            assert len(str(info.value).splitlines()) == 1
            assert corpus.con.execute("SELECT count(*) FROM genes").fetchall() == [(0,)]
    finally:
        server.close()


def _user_namespaces() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(["unshare", "-rm", "true"]).returncode == 0


@pytest.mark.skipif(not _user_namespaces(), reason="`unshare -rm` fails here: no tmpfs can be mounted to fill")
def test_database_on_a_full_disk_is_one_line_and_no_file(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    files = corpus_files(tmp_path / "files")
    script = (
        f"mount -t tmpfs -o size=64k tmpfs {disk} && head -c 60000 /dev/zero > {disk}/fill && "
        f"{SCOUTER_LOCAL} corpus import --db {disk}/c.duckdb {' '.join(map(str, files))}; echo status=$?; ls -A {disk}"
    )
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["status=1", "fill"], proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: database") and "no space left on its disk" in line, line
