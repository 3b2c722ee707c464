"""Read a TOML spec into a Model; every error names the file and the key.

Math strings are never evaluated: steps and function bodies go through :mod:`symbp.parse`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from symbp.errors import SpecError
from symbp.functions import ACTIVATIONS
from symbp.names import check_name
from symbp.ops import FUSED_LOSSES

MAX_SPEC_BYTES = 1_000_000
MAX_UNITS = 1_000_000
MAX_LAYERS = 10_000
LOSSES = tuple(FUSED_LOSSES)
REDUCTIONS = ("mean", "sum")


@dataclass(frozen=True)
class Layer:
    units: int
    activation: str


@dataclass(frozen=True)
class Network:
    """``[network]``: a stack of dense layers, a loss on the last, optional L2 on the weights."""

    inputs: int
    layers: tuple[Layer, ...]
    loss: str
    reduction: str = "mean"
    l2: float | None = None


@dataclass(frozen=True)
class Graph:
    """``[graph]``: declared values and single-assignment steps ending in a scalar loss."""

    inputs: dict[str, str]
    params: dict[str, str]
    constants: dict[str, float]
    steps: tuple[str, ...]
    loss: str


@dataclass(frozen=True)
class Model:
    """A validated spec. ``source`` is the file it came from, for messages."""

    name: str
    description: str
    source: str
    network: Network | None = None
    graph: Graph | None = None
    functions: dict[str, str] = field(default_factory=dict)


def load(path: str | Path) -> Model:
    """Read and validate a spec file; raises SpecError naming the file and key."""
    path = Path(path)
    where = str(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SpecError(f"cannot read the spec: {err.strerror}", where=where) from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"the spec is larger than {MAX_SPEC_BYTES} bytes", where=where)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("the spec is not UTF-8 text", where=where) from None
    return loads(text, where=where)


def loads(text: str, *, where: str = "<spec>") -> Model:
    """Validate a spec given as TOML text."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"TOML syntax error: {err}", where=where) from None
    try:
        return _model(doc, where)
    except SpecError as err:
        raise err.located(where=where) from None


def _model(doc: Mapping[str, Any], where: str) -> Model:
    _only_keys(doc, {"name", "description", "network", "graph", "functions"}, "")
    name = check_name(_string(doc, "name", "", required=True), "model name", key="name")
    description = _string(doc, "description", "", required=False) or ""
    functions = _functions(doc.get("functions", {}))
    has_network, has_graph = "network" in doc, "graph" in doc
    if has_network == has_graph:
        raise SpecError(
            "a spec needs exactly one of [network] (a stack of layers) or [graph] (steps)",
            key="network" if has_network else None,
        )
    if has_network:
        network = _network(doc["network"], functions)
        return Model(name, description, where, network=network, functions=functions)
    from symbp.graph import read_graph

    graph = read_graph(doc["graph"])
    return Model(name, description, where, graph=graph, functions=functions)


def _only_keys(table: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    for key in table:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise SpecError(f"unknown key; allowed here: {known}", key=f"{prefix}{key}")


def _string(table: Mapping[str, Any], key: str, prefix: str, *, required: bool) -> str | None:
    if key not in table:
        if required:
            raise SpecError("missing; add it", key=prefix + key)
        return None
    value = table[key]
    if not isinstance(value, str):
        raise SpecError(f"must be a string, got {_kind(value)}", key=prefix + key)
    return value


def _int(table: Mapping[str, Any], key: str, prefix: str, low: int, high: int) -> int:
    if key not in table:
        raise SpecError("missing; add it", key=prefix + key)
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"must be an integer, got {_kind(value)}", key=prefix + key)
    if not low <= value <= high:
        raise SpecError(f"must be between {low} and {high}, got {value}", key=prefix + key)
    return value


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    for t, n in names.items():
        if isinstance(value, t):
            return f"{n} ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _functions(table: Any) -> dict[str, str]:
    if not isinstance(table, dict):
        raise SpecError(
            f'must be a table of name = "body in z", got {_kind(table)}', key="functions"
        )
    from symbp.functions import builtin_table

    out: dict[str, str] = {}
    for name, body in table.items():
        key = f"functions.{name}"
        check_name(name, "function name", key=key)
        if name in builtin_table() or name in ("sum", "mean", "z", *LOSSES):
            raise SpecError(f"'{name}' is a built-in name; choose another", key=key)
        if not isinstance(body, str):
            raise SpecError(f"must be a math string in z, got {_kind(body)}", key=key)
        out[name] = body
    return out


def _network(table: Any, functions: Mapping[str, str]) -> Network:
    if not isinstance(table, dict):
        raise SpecError(f"must be a table, got {_kind(table)}", key="network")
    p = "network."
    _only_keys(table, {"inputs", "layers", "loss", "reduction", "l2"}, p)
    inputs = _int(table, "inputs", p, 1, MAX_UNITS)
    raw_layers = table.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise SpecError(
            'must be a non-empty list like [{ units = 32, activation = "tanh" }]', key=p + "layers"
        )
    if len(raw_layers) > MAX_LAYERS:
        raise SpecError(f"at most {MAX_LAYERS} layers", key=p + "layers")
    known = (*ACTIVATIONS, *functions)
    layers = []
    for i, raw in enumerate(raw_layers):
        lp = f"{p}layers[{i}]."
        if not isinstance(raw, dict):
            raise SpecError(
                f"must be a table {{ units = ..., activation = ... }}, got {_kind(raw)}",
                key=lp[:-1],
            )
        _only_keys(raw, {"units", "activation"}, lp)
        units = _int(raw, "units", lp, 1, MAX_UNITS)
        activation = _string(raw, "activation", lp, required=False) or "identity"
        if activation not in known:
            raise SpecError(
                f"unknown activation '{activation}'; known: {', '.join(known)} "
                "(or define it under [functions])",
                key=lp + "activation",
            )
        layers.append(Layer(units, activation))
    loss = _string(table, "loss", p, required=True)
    if loss not in LOSSES:
        raise SpecError(f"unknown loss '{loss}'; known: {', '.join(LOSSES)}", key=p + "loss")
    if loss != "squared_error" and layers[-1].activation != "identity":
        raise SpecError(
            f"{loss} takes logits, so the last layer's activation must be 'identity' "
            f"(got '{layers[-1].activation}'); the loss applies the "
            f"{'softmax' if loss.startswith('softmax') else 'sigmoid'} itself",
            key=f"{p}layers[{len(layers) - 1}].activation",
        )
    reduction = _string(table, "reduction", p, required=False) or "mean"
    if reduction not in REDUCTIONS:
        raise SpecError(f"must be 'mean' or 'sum', got '{reduction}'", key=p + "reduction")
    l2 = table.get("l2")
    if l2 is not None:
        if isinstance(l2, bool) or not isinstance(l2, int | float) or not 0 <= l2 < float("inf"):
            raise SpecError(f"must be a number ≥ 0, got {_kind(l2)}", key=p + "l2")
        l2 = float(l2)
    return Network(inputs, tuple(layers), loss, reduction, l2)
