"""notebooks/quickstart.ipynb executes top to bottom on the real data (so it never rots)."""

from __future__ import annotations

import json
import sys

import nbformat
from nbclient import NotebookClient

from tests.conftest import ROOT


def test_quickstart_notebook_executes(data_dir, tmp_path, monkeypatch):
    kernel = tmp_path / "kernels" / "scouter-local-test"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "scouter-local test",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("SCOUTER_DATA_DIR", str(data_dir))
    notebook = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    NotebookClient(
        notebook,
        kernel_name="scouter-local-test",
        timeout=600,
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    ).execute()
    outputs = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert "MAP3K21" in outputs and "alias" in outputs
    assert "source file: None" in outputs  # the screen came from an AnnData in memory, no h5ad in between
    assert "AnnData object with n_obs × n_vars = 4 × 500" in outputs and "layers: 'delta'" in outputs
    assert "gene_delta" in outputs and "normmse_mean" in outputs and "train_mean" in outputs
    assert "nearest trained perturbations" in outputs and "reloaded model, all 33 conditions" in outputs
    assert not list(ROOT.glob("notebooks/*.h5ad"))
