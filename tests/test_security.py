"""Security: no arbitrary unpickling anywhere in the package, ``weights_only`` torch loads, no hard-coded
``trust_remote_code=True``, and the one restricted unpickler refuses code-running payloads."""

from __future__ import annotations

import ast
import os
import pickle

import numpy as np
import pytest

from gene_corpus.errors import InputError
from scouter_local.embedding.exchange import safe_load_pickle
from tests.conftest import ROOT

PACKAGES = ("scouter_local", "gene_corpus")
#: ``module.function`` calls that unpickle (run code from the file) whatever their arguments.
UNPICKLING = {
    "pickle.load",
    "pickle.loads",
    "pickle.Unpickler",
    "dill.load",
    "dill.loads",
    "cloudpickle.load",
    "cloudpickle.loads",
    "joblib.load",
    "pd.read_pickle",
    "pandas.read_pickle",
    "marshal.load",
    "marshal.loads",
    "shelve.open",
    "jsonpickle.decode",
    "yaml.unsafe_load",
}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else "<expr>"
    return None


def _findings() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            where = lambda node: f"{path.relative_to(ROOT)}:{node.lineno}"  # noqa: E731
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and any(_name(b) == "pickle.Unpickler" for b in node.bases):
                    methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
                    if "find_class" not in methods:
                        found.append(f"{where(node)}: Unpickler subclass {node.name} without a find_class allow-list")
                if not isinstance(node, ast.Call):
                    continue
                name = _name(node.func)
                if name in UNPICKLING:
                    found.append(f"{where(node)}: {name}(…) unpickles arbitrary objects")
                elif name == "torch.load" and _keyword(node, "weights_only") is not True:
                    found.append(f"{where(node)}: torch.load without weights_only=True")
                elif name in ("np.load", "numpy.load") and _keyword(node, "allow_pickle") not in (None, False):
                    found.append(f"{where(node)}: {name} with allow_pickle")
                if _keyword(node, "trust_remote_code") is True:
                    found.append(f"{where(node)}: trust_remote_code=True hard-coded (must come from the user's flag)")
    return found


def test_no_unsafe_deserialisation_in_the_package() -> None:
    assert _findings() == []


def test_scan_sees_the_loads_that_exist() -> None:
    """The scan is not vacuous: it parses the files that do load weights and pickles."""
    calls = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            calls |= {_name(n.func) for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)}
    assert {"torch.load", "torch.save"} <= calls


class _Payload:
    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize(
    "payload",
    [
        {"KLF1": _Payload(os.system, "touch {marker}")},
        {"KLF1": _Payload(eval, "__import__('os').system('touch {marker}')")},
        _Payload(exec, "open('{marker}', 'w')"),
        {"KLF1": np.array([_Payload(os.system, "touch {marker}")], dtype=object)},
    ],
    ids=["os.system", "eval", "exec", "object array"],
)
def test_restricted_unpickler_refuses_code(payload, tmp_path) -> None:
    marker = tmp_path / "PWNED"

    def fill(obj):
        if isinstance(obj, _Payload):
            return _Payload(obj.func, *(a.format(marker=marker) for a in obj.args))
        if isinstance(obj, dict):
            return {k: fill(v) for k, v in obj.items()}
        if isinstance(obj, np.ndarray):
            return np.array([fill(v) for v in obj], dtype=object)
        return obj

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(fill(payload)))
    with pytest.raises(InputError, match="refused as embeddings pickle"):
        safe_load_pickle(path)
    assert not marker.exists()


def test_restricted_unpickler_reads_genept_pickles(tmp_path) -> None:
    path = tmp_path / "genept.pkl"
    path.write_bytes(pickle.dumps({"KLF1": [0.1, 0.2], "SET": np.array([0.3, 0.4], dtype=np.float64)}))
    got = safe_load_pickle(path)
    assert list(got) == ["KLF1", "SET"]
    np.testing.assert_allclose(got["SET"], [0.3, 0.4])
