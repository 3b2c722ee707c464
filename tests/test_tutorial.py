"""The tutorial notebook runs from top to bottom (nbclient, as CI runs it), and git holds it
without outputs (issue 15)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.conftest import ROOT

NOTEBOOK = ROOT / "examples" / "tutorial.ipynb"


def test_the_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def test_the_notebook_runs_from_a_folder_of_specs(tmp_path: Path):
    """Where a reader runs it: a folder holding the specs (a checkout's examples/, or what
    ``symbp examples`` wrote), with this checkout's symbp on the kernel's path and PATH."""
    for spec in (ROOT / "examples").glob("*.toml"):
        shutil.copy(spec, tmp_path)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    started = time.perf_counter()
    client.execute(env=env)  # a cell that raises, or a %%bash command that fails, fails here
    seconds = time.perf_counter() - started
    print(f"the tutorial ran in {seconds:.1f} s")
    # Stream outputs arrive in chunks cut anywhere (even inside a word): join them as they are.
    text = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "ok: largest relative error" in text  # symbp check passed
    assert "cheap gradient (a + d) / a" in text  # the redundancy report
    assert "epoch 40/40" in text
    accuracy = float(text.split("test accuracy ")[1].split("%")[0])
    assert accuracy >= 97.0
    images = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert len(images) == 2  # the training curves and the digits it gets wrong
    for name in ("logistic_l2.py", "logistic_l2.tex", "mlp_digits.py", "history.png"):
        assert (tmp_path / "tutorial-output" / name).is_file(), name
    assert seconds < 120
