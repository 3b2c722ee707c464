"""Jupyter shows a model and its derivation: the computation graph beside the equations.

A Model (from the front end) and a Derivation know nothing of how they are shown. This module
gives their views, and registers them with IPython's display formatters when symbp is imported
inside IPython (a kernel or a shell), so that a cell ending in ``symbp.load("spec.toml")`` or
``symbp.derive(model)`` shows them.
"""

from __future__ import annotations

import base64
import html
import sys
from typing import Any

from symbp.derivation import Derivation, derive
from symbp.emit.drawing import draw
from symbp.emit.latex import markdown as equations
from symbp.errors import SpecError
from symbp.files import OutputError
from symbp.front.spec import Model


def _derivation(obj: Model | Derivation) -> Derivation:
    return obj if isinstance(obj, Derivation) else derive(obj)


def svg(obj: Model | Derivation) -> str | None:
    """The forward and backward computation graph as SVG; None without Graphviz, or for a
    model that cannot be derived."""
    try:
        return draw(_derivation(obj), "svg", backward=True).decode("utf-8")
    except (OutputError, SpecError):
        return None


def markdown(obj: Model | Derivation) -> str:
    """The graph as an inline image (Jupyter shows one MIME type per output, Markdown before
    SVG, so the Markdown carries the picture too), then the forward and backward equations;
    for a model that cannot be derived, why."""
    try:
        derivation = _derivation(obj)
    except SpecError as err:
        return f"**{obj.name}**: cannot be derived: {err}"
    picture = svg(derivation)
    figure = ""
    if picture is not None:
        data = base64.b64encode(picture.encode("utf-8")).decode("ascii")
        alt = html.escape(f"computation graph of {derivation.model.name}")
        figure = f'<img src="data:image/svg+xml;base64,{data}" alt="{alt}"/>\n\n'
    return figure + equations(derivation)


def register(shell: Any) -> None:
    """Show Models and Derivations in ``shell`` (an IPython InteractiveShell)."""
    formatters = shell.display_formatter.formatters
    for kind in (Model, Derivation):
        formatters["text/markdown"].for_type(kind, markdown)
        formatters["image/svg+xml"].for_type(kind, svg)


def register_in_ipython() -> None:
    """Register with the running IPython, if symbp is imported inside one (IPython is not
    imported here: outside it, nothing happens)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        register(shell)
