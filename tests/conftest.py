"""Shared fixtures: build a generated module from spec text, in a temporary directory."""

from __future__ import annotations

import ast
import itertools
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

from symbp.derivation import derive
from symbp.emit.numpy_module import generate
from symbp.front.spec import loads
from symbp.loader import load_module

ROOT = Path(__file__).resolve().parent.parent

# CI replays the same examples every run (a landing must not depend on luck); locally,
# hypothesis explores new ones each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
_names = itertools.count()

TEX_TOOLS = ("pdflatex", "pdftotext", "pdfinfo")
"""What tests marked ``tex`` run: TeX Live compiles, poppler-utils reads the PDF back."""
TEX_INSTALL = "apt-get install texlive-latex-base texlive-latex-recommended poppler-utils"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """The one place where a test marked ``tex`` meets a machine without TeX: it is skipped,
    saying what to install, except where ``SYMBP_REQUIRE_TEX=1`` (CI, whose ``.ci/run``
    installs TeX), where it fails: a CI run must never pass by skipping the documents."""
    if item.get_closest_marker("tex") is None:
        return
    missing = [tool for tool in TEX_TOOLS if shutil.which(tool) is None]
    if not missing:
        return
    why = f"needs {', '.join(missing)} (on Debian or Ubuntu: {TEX_INSTALL})"
    if os.environ.get("SYMBP_REQUIRE_TEX") == "1":
        pytest.fail(f"{why}; SYMBP_REQUIRE_TEX=1 requires TeX", pytrace=False)
    pytest.skip(why)


def network_spec(
    inputs: int,
    layers: list[tuple[int, str]],
    loss: str,
    *,
    reduction: str = "mean",
    l2: float | None = None,
    name: str = "net",
) -> str:
    rows = ",\n".join(f'  {{ units = {u}, activation = "{a}" }}' for u, a in layers)
    text = f'name = "{name}"\n\n[network]\ninputs = {inputs}\nlayers = [\n{rows}\n]\n'
    text += f'loss = "{loss}"\nreduction = "{reduction}"\n'
    if l2 is not None:
        text += f"l2 = {l2}\n"
    return text


@pytest.fixture
def build_module(tmp_path):
    """Spec text → (imported generated module, derivation)."""

    def build(text: str):
        derivation = derive(loads(text))
        path = tmp_path / f"{derivation.model.name}_{next(_names)}.py"
        path.write_text(generate(derivation), encoding="utf-8")
        return load_module(path), derivation

    return build


def imported_packages(source: str) -> set[str]:
    """The top-level packages a module's source imports, anywhere in it."""
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    return imported
