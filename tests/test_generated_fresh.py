"""``generated/`` is the golden record: it must equal what the examples generate today."""

from __future__ import annotations

import os
import subprocess
import sys

from symbp.cli.regenerate import expected_outputs
from tests.conftest import ROOT


def test_generated_files_are_fresh(monkeypatch):
    monkeypatch.chdir(ROOT)
    expected = expected_outputs(ROOT)
    assert expected, "no examples found"
    stale = [
        str(path.relative_to(ROOT))
        for path, text in expected.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"stale: {stale}; run `python -m symbp.cli.regenerate`"
    made = [*(ROOT / "generated").glob("*.py"), *(ROOT / "generated").glob("*.tex")]
    extra = set(made) - set(expected)
    assert not extra, f"files with no example: {sorted(map(str, extra))}"


def test_generated_code_passes_ruff():
    env = dict(os.environ)
    for args in (["check", "generated"], ["format", "--check", "generated"]):
        run = subprocess.run(
            [sys.executable, "-m", "ruff", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=env,
        )
        assert run.returncode == 0, run.stdout + run.stderr
