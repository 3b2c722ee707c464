"""The README's training section is true: its Python runs as written, and the output it shows
for examples/train_digits.py is what the script prints (times aside)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from symbp.cli import main
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", README, re.M | re.S)


def _in_a_folder_with_the_module(tmp_path: Path) -> Path:
    (tmp_path / "generated").mkdir()
    shutil.copy(ROOT / "generated" / "mlp_digits.py", tmp_path / "generated")
    return tmp_path


def test_the_python_that_loads_a_module_runs_as_written(tmp_path: Path):
    blocks = [b for b in _blocks("python") if 'symbp.load_module("generated/mlp_digits.py")' in b]
    assert len(blocks) == 2  # the symbp.train example and the loop by hand
    folder = _in_a_folder_with_the_module(tmp_path)
    for block in blocks:
        run = subprocess.run(
            [sys.executable, "-c", block], cwd=folder, capture_output=True, text=True
        )
        assert run.returncode == 0, block + run.stderr
    assert (folder / "digits.npz").exists()


def _masked(text: str) -> list[str]:
    """Lines without their times, which differ from run to run."""
    return [re.sub(r"\d+\.\d+ s\b", "_ s", line) for line in text.splitlines()]


def test_the_shown_output_of_train_digits_is_real(tmp_path: Path):
    (shown,) = [b for b in _blocks("console") if "$ python examples/train_digits.py" in b]
    folder = _in_a_folder_with_the_module(tmp_path)
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_digits.py")],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    printed = _masked(run.stdout)
    lines = [line for line in _masked(shown)[1:] if line != "..."]
    assert len(lines) >= 6
    for line in lines:
        assert line in printed, line


def _scaling_block(needle: str) -> str:
    (block,) = [b for b in _blocks("python") if needle in b]
    return block


def _with_the_array_api_module(tmp_path: Path) -> Path:
    spec = str(ROOT / "examples" / "mlp_digits.toml")
    result = CliRunner().invoke(
        main, ["generate", "--target", "array-api", spec, "-o", str(tmp_path / "generated")]
    )
    assert result.exit_code == 0, result.output
    return tmp_path


def test_the_pytorch_example_prints_what_it_says(tmp_path: Path):
    pytest.importorskip("torch", reason="PyTorch is in the bench extra")
    block = _scaling_block("import array_api_compat.torch as xp")
    folder = _with_the_array_api_module(tmp_path)
    run = subprocess.run([sys.executable, "-c", block], cwd=folder, capture_output=True, text=True)
    assert run.returncode == 0, block + run.stderr
    assert run.stdout == "Tensor torch.float64 (64, 32)\n"
    assert "prints `Tensor torch.float64 (64, 32)`" in README


def test_the_dask_example_runs_as_written(tmp_path: Path):
    folder = _with_the_array_api_module(tmp_path)
    rng = np.random.default_rng(0)
    np.save(folder / "X.npy", rng.standard_normal((60_000, 64)))
    np.save(folder / "y.npy", rng.integers(0, 10, 60_000))
    block = _scaling_block("symbp.dask.from_npy") + "\nprint(loss, accuracy)\n"
    run = subprocess.run([sys.executable, "-c", block], cwd=folder, capture_output=True, text=True)
    assert run.returncode == 0, block + run.stderr
    loss, accuracy = map(float, run.stdout.split())
    assert loss > 0 and 0 <= accuracy <= 1
