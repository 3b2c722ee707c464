"""A non-editable install into a new virtual environment works from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

from tests.conftest import ROOT


def test_wheel_installs_and_generates(tmp_path: Path):
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = dist.glob("symbp-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    spec = work / "net.toml"
    spec.write_text(
        'name = "net"\n[network]\ninputs = 2\nlayers = [{ units = 2, activation = "tanh" }]\n'
        'loss = "squared_error"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    symbp = env_dir / "bin" / "symbp"
    result = subprocess.run(
        [str(symbp), "generate", "net.toml"], cwd=work, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert (work / "generated" / "net.py").exists()
    where = subprocess.run(
        [str(python), "-c", "import symbp, sys; print(symbp.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
    )
    assert str(env_dir) in where.stdout, "the installed copy, not the checkout, must run"
    demo = subprocess.run(
        [str(python), "-m", "symbp", "demo", "out"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    # The README's path from a pip install to a trained digits model, with no checkout:
    # copy the examples out, generate the module, train (shortened; CI has scikit-learn).
    newcomer = tmp_path / "newcomer"
    newcomer.mkdir()
    for args in (
        [str(symbp), "examples"],
        [str(symbp), "generate", "examples/mlp_digits.toml"],
        [str(python), "examples/train_digits.py", "--epochs", "3"],
    ):
        run = subprocess.run(args, cwd=newcomer, capture_output=True, text=True, env=env)
        assert run.returncode == 0, (args, run.stdout + run.stderr)
    assert "test accuracy" in run.stdout
    assert (newcomer / "train_digits" / "params.npz").exists()
