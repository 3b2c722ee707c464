"""``symbp.load_module``: a generated module by its path, only if its header verifies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symbp
from symbp.loader import load_source
from symbp.provenance import stamp_text
from tests.conftest import ROOT

DIGITS = ROOT / "generated" / "mlp_digits.py"


def test_loads_a_generated_module_from_any_directory(tmp_path: Path):
    """No ``sys.path`` line: the path is enough, from the repository root or elsewhere."""
    code = (
        "import numpy as np, symbp\n"
        f"net = symbp.load_module({str(DIGITS)!r})\n"
        "params = net.init_params(rng=0)\n"
        "X, y = np.zeros((3, 64)), np.array([0, 1, 9])\n"
        "loss, grads = net.loss_and_grad(params, X, y)\n"
        "print(sorted(grads), net.predict(params, X).shape)\n"
    )
    for cwd in (ROOT, tmp_path):
        run = subprocess.run(
            [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True
        )
        assert run.stdout.strip() == "['W1', 'W2', 'b1', 'b2'] (3, 10)"


def _marker_module(marker: Path) -> str:
    """A module that leaves a file behind when it runs, and defines the API."""
    return (
        f"open({str(marker)!r}, 'w').close()\n"
        "PARAM_SHAPES = INPUT_SHAPES = {}\n"
        "def init_params(rng=None): return {}\n"
        "def forward(params): return 0.0, {}\n"
        "def loss_and_grad(params): return 0.0, {}\n"
    )


def test_refuses_a_file_symbp_did_not_write_without_running_it(tmp_path: Path):
    marker, path = tmp_path / "ran", tmp_path / "mine.py"
    path.write_text(_marker_module(marker))
    with pytest.raises(symbp.UnverifiedModule, match=r"it has no symbp header.*trust=True"):
        symbp.load_module(path)
    assert not marker.exists()
    module = symbp.load_module(path, trust=True)  # as `symbp check --trust`: it runs
    assert marker.exists() and module.PARAM_SHAPES == {}


def test_refuses_an_edited_module_without_running_it(tmp_path: Path):
    marker, path = tmp_path / "ran", tmp_path / "edited.py"
    text = stamp_text(_marker_module(marker))
    path.write_text(text.replace("return 0.0", "return 1.0", 1))
    with pytest.raises(symbp.UnverifiedModule, match="does not match its contents"):
        symbp.load_module(path)
    assert not marker.exists()
    path.write_text(text)  # the same bytes symbp stamped: verified, so it runs
    symbp.load_module(path)
    assert marker.exists()


def test_a_verified_file_that_is_not_a_module_is_named(tmp_path: Path):
    path = tmp_path / "table.py"
    path.write_text(stamp_text("x = 1\n"))
    with pytest.raises(ValueError, match=r"table\.py: not a symbp module: it lacks PARAM_SHAPES"):
        symbp.load_module(path)
    with pytest.raises(ValueError, match="cannot read the module"):
        symbp.load_module(tmp_path / "missing.py")


def test_each_load_is_a_fresh_module():
    first, second = symbp.load_module(DIGITS), symbp.load_module(DIGITS)
    assert first is not second and first.__name__ != second.__name__
    params = first.init_params(rng=1)
    X = np.ones((2, 64))
    np.testing.assert_array_equal(first.predict(params, X), second.predict(params, X))


def test_load_source_runs_only_text_that_verifies():
    """What a Dask worker does with a module's source: verify it, then run it."""
    source = DIGITS.read_text(encoding="utf-8")
    module = load_source(source, "digits")
    assert module.__symbp_source__ == source and hasattr(module, "loss_and_grad")
    edited = source.replace("A1 = np.tanh(Z1, out=Z1)", "A1 = np.sin(Z1, out=Z1)")
    with pytest.raises(symbp.UnverifiedModule, match="was edited since symbp wrote it"):
        load_source(edited, "digits")
    assert load_source(edited, "digits", trust=True).__symbp_source__ == edited
