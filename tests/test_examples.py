"""What a newcomer runs: ``symbp examples`` and ``examples/train_digits.py`` (issue 15)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from symbp.cli import main
from symbp.front.spec import load
from symbp.provenance import Provenance, provenance
from symbp.resources import example_specs
from tests.conftest import ROOT

EPOCHS = 15
"""The CI run's epochs (the example trains 40): seeds 0 to 9 reach 95.8 to 97.8% here."""


def test_the_digits_example_trains_to_95_percent(tmp_path: Path):
    """The shortened run CI makes: generate the module as the README says, train, check."""
    runner = CliRunner()
    module = tmp_path / "generated" / "mlp_digits.py"
    spec = str(ROOT / "examples" / "mlp_digits.toml")
    assert runner.invoke(main, ["generate", spec, "-o", str(module)]).exit_code == 0
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_digits.py"), "--epochs", str(EPOCHS)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == EPOCHS and epochs[0].startswith(f"epoch  1/{EPOCHS}  loss ")
    found = re.search(r"^test accuracy (\d+\.\d+)% \((\d+) of 450\)", run.stdout, re.M)
    assert found, run.stdout
    assert float(found.group(1)) >= 95.0
    assert f"val accuracy {found.group(1)}%" in epochs[-1]  # the reloaded parameters agree
    for name in ("params.npz", "history.png"):
        path = tmp_path / "train_digits" / name
        assert provenance(path.read_bytes()) is Provenance.OURS, name


def test_the_digits_example_says_what_is_missing(tmp_path: Path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_digits.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert "no generated/mlp_digits.py; run: symbp generate examples/mlp_digits.toml" in (
        run.stderr
    )


def test_examples_copies_the_specs_and_keeps_a_users_edits(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["examples"])
    assert result.exit_code == 0, result.output
    copied = sorted(p.name for p in (tmp_path / "examples").iterdir())
    scripts = ["train_digits.py", "train_dask.py"]
    assert copied == sorted([*(p.name for p in example_specs()), *scripts])
    for spec in example_specs():
        copy = tmp_path / "examples" / spec.name
        assert provenance(copy.read_bytes()) is Provenance.OURS
        assert copy.read_text().split("\n", 1)[1] == spec.read_text()
        assert load(copy).name == load(spec).name  # the header is a TOML comment
    assert runner.invoke(main, ["examples"]).exit_code == 0  # unedited copies are replaced
    edited = tmp_path / "examples" / "mlp_digits.toml"
    edited.write_text(edited.read_text().replace("units = 32", "units = 64"))
    before = {p.name: p.read_bytes() for p in (tmp_path / "examples").iterdir()}
    result = runner.invoke(main, ["examples"])
    assert result.exit_code == 2
    assert "mlp_digits.toml was edited since symbp wrote it; use --force" in result.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "examples").iterdir()} == before
    assert runner.invoke(main, ["examples", "--force"]).exit_code == 0
    assert "units = 32" in edited.read_text()
    result = runner.invoke(main, ["examples", "elsewhere"])
    assert result.exit_code == 0 and (tmp_path / "elsewhere" / "logistic_l2.toml").exists()


def _help_examples() -> list[str]:
    """Every ``symbp …`` line of an Example block in the help of every command."""
    runner = CliRunner()
    texts = [runner.invoke(main, ["--help"]).output]
    texts += [runner.invoke(main, [name, "--help"]).output for name in main.commands]
    lines = []
    for text in texts:
        for line in text.splitlines():
            command = line.strip().split("  ")[0].split(" # ")[0].strip()
            if command.startswith("symbp ") and "--help" not in command:
                lines.append(command)
    return lines


def test_every_help_example_names_files_that_symbp_examples_writes(tmp_path, monkeypatch):
    """After a pip install there is no checkout: the examples name copied specs only."""
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(main, ["examples"]).exit_code == 0
    commands = _help_examples()
    assert "symbp examples" in commands and len(commands) >= 12
    for command in commands:
        for word in command.split()[1:]:
            if word.startswith("examples/") and "*" not in word:
                assert (tmp_path / word).is_file(), (command, word)


def test_the_start_here_commands_work_in_an_empty_directory(tmp_path, monkeypatch):
    """``symbp --help``'s first steps, in order, where nothing but symbp is installed."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    text = runner.invoke(main, ["--help"]).output
    block = text[text.index("Start here") : text.index("Options:")]
    commands = [line.strip().split("  ")[0] for line in block.splitlines()[1:] if line.strip()]
    assert commands[0] == "symbp examples"
    assert commands[-1] == "python examples/train_digits.py"  # run by the test above
    for command in commands[:-1]:
        result = runner.invoke(main, command.split()[1:])
        assert result.exit_code == 0, (command, result.output)
