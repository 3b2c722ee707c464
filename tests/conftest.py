"""Shared fixtures: build a generated module from spec text, in a temporary directory."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from hypothesis import settings

from symbp.analysis.gradcheck import load_module
from symbp.derivation import derive
from symbp.emit.numpy_module import generate
from symbp.front.spec import loads

ROOT = Path(__file__).resolve().parent.parent

# CI replays the same examples every run (a landing must not depend on luck); locally,
# hypothesis explores new ones each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
_names = itertools.count()


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
