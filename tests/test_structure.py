"""Package structure: the flow's stages in order (a module imports only from its own stage or an earlier one), no
import cycle among the modules (at any level, function bodies included), no use of the deprecated flat paths, a light
command line, and a public API that names every documented entry point."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("scouter_local", "gene_corpus")
#: The flow's stages, in order (README, "Package layout"): a module belongs to the stage of its longest prefix here.
STAGES = (
    ("gene_corpus",),
    (
        "scouter_local",
        "scouter_local._exports",
        "scouter_local.runtime",
        "scouter_local.conditions",
        "scouter_local.stats",
    ),
    ("scouter_local.embedding",),
    ("scouter_local.index", "scouter_local.data"),
    ("scouter_local.datasets",),
    ("scouter_local.predictors",),
    ("scouter_local.evaluation",),
    ("scouter_local.reporting",),
    ("scouter_local.benchmarking",),
    ("scouter_local.workflows",),
    ("scouter_local.bundle", "scouter_local.doctor"),
    ("scouter_local.cli",),
)
#: Module paths of the flat layout, kept for one release for users' imports (the package itself never uses them).
DEPRECATED = tuple(
    f"scouter_local.{m}"
    for m in (
        "encoders",
        "embedding_set",
        "embedding_store",
        "knowledge_sets",
        "cells",
        "training",
        "prediction",
        "explain",
        "plotting",
        "report",
        "demo",
        "comparison",
        "install_bundle",
    )
) + ("gene_corpus.atomic",)


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → the project modules it imports, wherever the import statement stands."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(
                        [*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [base])]
                    )
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    graph = import_graph()
    assert graph["scouter_local.predictors.checkpoint"] >= {"scouter_local.data.splits", "scouter_local.predictors"}
    assert cycles(graph) == []


def stage_of(module: str) -> int:
    """Index in :data:`STAGES` of the stage holding ``module`` (its longest listed prefix)."""
    matches = [
        (len(prefix), i)
        for i, prefixes in enumerate(STAGES)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    if not matches:
        raise AssertionError(f"{module} is in no stage of STAGES; add it where it belongs in the flow")
    return max(matches)[1]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """``"a -> b"`` for every import of a module of a later stage."""
    return sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        if m not in DEPRECATED
        for t in targets
        if stage_of(t) > stage_of(m)
    )


def test_imports_follow_the_flow():
    graph = import_graph()
    assert upward_imports(graph) == []
    assert (
        stage_of("scouter_local.embedding.store")
        < stage_of("scouter_local.data.link")
        < stage_of("scouter_local.predictors.base")
    )


def test_flow_check_finds_an_upward_import():
    graph = {"scouter_local.data.read": {"scouter_local.evaluation.metrics"}, "scouter_local.evaluation.metrics": set()}
    assert upward_imports(graph) == ["scouter_local.data.read -> scouter_local.evaluation.metrics"]


def test_no_module_uses_a_deprecated_path():
    graph = import_graph()
    assert set(DEPRECATED) <= set(graph)
    users = sorted(
        f"{m} -> {t}" for m, targets in graph.items() if m not in DEPRECATED for t in targets & set(DEPRECATED)
    )
    assert users == []


@pytest.mark.parametrize("old", DEPRECATED)
def test_deprecated_path_still_answers_with_a_warning(old):
    import importlib

    module = importlib.import_module(old)
    name = next(
        n
        for n in (
            "atomic_path",
            "EmbeddingSet",
            "Encoder",
            "embed_corpus",
            "go_embedding_set",
            "CellMatrix",
            "train",
            "predict",
            "explain",
            "save_figure",
            "Document",
            "run_demo",
            "compare_models",
            "check_manifest",
        )
        if _has(module, n)
    )
    with pytest.warns(DeprecationWarning, match=name):
        assert getattr(module, name) is not None


def _has(module, name: str) -> bool:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hasattr(module, name)


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["train", "--help"], ["corpus", "import", "--help"], ["embed", "--help"], ["benchmark", "--help"]],
)
def test_help_loads_no_heavy_library(argv):
    """``--help`` imports only click and the standard library's share: no torch, pandas, DuckDB, AnnData."""
    code = (
        "import sys; from scouter_local.cli import main; "
        f"main.main({argv!r}, standalone_mode=False); "
        "print(sorted(m for m in ('torch', 'pandas', 'duckdb', 'anndata', 'transformers', 'faiss', 'scipy') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_public_api():
    import scouter_local as sl

    for name in sl.__all__:
        assert getattr(sl, name) is not None
    assert callable(sl.train) and callable(sl.evaluate) and callable(sl.benchmark) and callable(sl.predict)
    assert issubclass(sl.InputError, ValueError)
