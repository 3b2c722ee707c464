"""Read a TOML spec into a Model; every error names the file and the key.

Math strings are never evaluated: steps and function bodies go through :mod:`symbp.front.parse`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from symbp.errors import SpecError
from symbp.files import read_regular
from symbp.front.parse import Call, ParseError, parse_expression, quoted, walk
from symbp.front.tomlkeys import deepest_key, oversized_number
from symbp.ir.functions import ACTIVATIONS, builtin_table
from symbp.ir.losses import LOSSES
from symbp.ir.names import (
    check_function_name,
    check_module_name,
    check_name,
    clashes,
    network_values,
)
from symbp.ir.ops import step_calls
from symbp.ir.program import Shape

BUILTIN_COSTS = {name: entry.cost for name, entry in builtin_table().items()}

MAX_SPEC_BYTES = 1_000_000
MAX_UNITS = 1_000_000
MAX_LAYERS = 10_000
MAX_DESCRIPTION = 2000
MAX_FUNCTIONS = 100
MAX_NESTING = 32
"""Arrays and tables nested deeper than this are named in the error of a spec tomllib cannot
read for its depth."""
FUNCTION_BUDGET = 8
"""How much a ``[functions]`` body may call, counting through the user functions it calls
(each function's cost is in its record: 2 for the piecewise ones, GELU, SiLU and log, else 1).

SymPy's derivative of a body grows with every call in it, and a piecewise call (relu) doubles
the cases of all the others, so a body of many calls could keep symbp busy for minutes: eight
nested tanh or four relu (cost 8) take a few seconds, sixteen tanh or eight relu minutes.
"""
FUNCTIONS_BUDGET = 24
"""How much all ``[functions]`` bodies together may cost: each is differentiated on its own."""
REDUCTIONS = ("mean", "sum")


@dataclass(frozen=True)
class Layer:
    units: int
    activation: str
    bias: bool = True
    """Whether the layer adds a bias vector (``bias = false``: Z = A W, as seed 003 writes)."""


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
    output: str | None = None
    """The step ``predict`` returns (``output = "<value>"``, optional; issue 15)."""


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
    if path.suffix == ".py":
        raise SpecError(
            "this looks like a generated module (a .py file), not a spec; name the .toml spec "
            "it was generated from (symbp check takes a module)",
            where=where,
        )
    data = read_regular(path, MAX_SPEC_BYTES, "the spec", ".toml spec")
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"the spec is larger than {MAX_SPEC_BYTES} bytes", where=where)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("the spec is not UTF-8 text", where=where) from None
    return loads(text.removeprefix("\ufeff"), where=where)


def loads(text: str, *, where: str = "<spec>") -> Model:
    """Validate a spec given as TOML text."""
    _check_source(where)
    doc = _parse_toml(text, where)
    try:
        return _model(doc, where)
    except SpecError as err:
        raise err.located(where=where) from None


def _parse_toml(text: str, where: str) -> dict[str, Any]:
    """The TOML document; the limits tomllib hits without naming a key are named here."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"TOML syntax error: {err}", where=where) from None
    except ValueError:  # an integer longer than Python reads (4300 digits)
        found = oversized_number(text)
        if found is None:
            raise
        key, digits = found
        raise SpecError(
            f"a number of {digits} digits; numbers in a spec are far smaller", where=where, key=key
        ) from None
    except RecursionError:
        raise SpecError(
            f"nested more than {MAX_NESTING} arrays or tables deep; a spec needs a few levels",
            where=where,
            key=deepest_key(text, MAX_NESTING),
        ) from None


def _check_source(where: str) -> None:
    """The spec's file name is quoted in the generated module's docstring: refuse a name that
    could end that docstring (a double quote, a backslash) or break its line."""
    name = Path(where).name
    if any(c in '"\\' or not c.isprintable() for c in name):
        raise SpecError(
            "the file name may not hold double quotes, backslashes or control characters "
            "(it is quoted in the generated module); rename the file",
            where=where,
        )


def _description(doc: Mapping[str, Any]) -> str:
    """The description becomes the generated module's docstring: plain text of bounded size."""
    text = _string(doc, "description", "", required=False) or ""
    if len(text) > MAX_DESCRIPTION:
        raise SpecError(
            f"at most {MAX_DESCRIPTION} characters, got {len(text)}; shorten it", key="description"
        )
    if '"""' in text or "\\" in text:
        raise SpecError(
            "may not hold '\"\"\"' or backslashes (it becomes the generated module's "
            "docstring); rephrase it",
            key="description",
        )
    bad = [c for c in text if not c.isprintable() and c not in "\n\t"]
    if bad:
        raise SpecError(
            f"may not hold the control character {bad[0]!r}; remove it", key="description"
        )
    return text


def _model(doc: Mapping[str, Any], where: str) -> Model:
    _only_keys(doc, {"name", "description", "network", "graph", "functions"}, "")
    name = check_module_name(_string(doc, "name", "", required=True), key="name")
    description = _description(doc)
    functions = _functions(doc.get("functions", {}))
    has_network, has_graph = "network" in doc, "graph" in doc
    if has_network == has_graph:
        raise SpecError(
            "a spec needs exactly one of [network] (a stack of layers) or [graph] (steps)",
            key="network" if has_network else None,
        )
    if has_network:
        network = _network(doc["network"], functions)
        _check_network_names(network, functions)
        return Model(name, description, where, network=network, functions=functions)
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
        raise SpecError(
            f"must be between {low} and {high}, got {_number(value)}", key=prefix + key
        )
    return value


def _number(value: int) -> str:
    """An integer for a message: a huge one by its number of digits, not all of them."""
    digits = len(str(abs(value)))
    return str(value) if digits <= 20 else f"an integer of {digits} digits"


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if type(value) is int and len(str(abs(value))) > 20:
        return _number(value)
    for t, n in names.items():
        if isinstance(value, t):
            return f"{n} ({quoted(value) if t is str else repr(value)})"
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
    if len(table) > MAX_FUNCTIONS:
        raise SpecError(f"at most {MAX_FUNCTIONS} functions", key="functions")
    out: dict[str, str] = {}
    costs: dict[str, int] = {}
    for name, body in table.items():
        key = f"functions.{name}"
        if name in step_calls(builtin_table()) or name == "z":
            raise SpecError(f"'{name}' is a built-in name; choose another", key=key)
        check_function_name(name, key=key)
        if not isinstance(body, str):
            raise SpecError(f"must be a math string in z, got {_kind(body)}", key=key)
        try:
            tree = parse_expression(body)
        except ParseError as err:
            raise SpecError(f"{err.message} in {quoted(body)}", key=key) from None
        for node in walk(tree):
            if isinstance(node, Call) and node.func in table and node.func not in out:
                which = "itself" if node.func == name else f"'{node.func}', defined below it"
                raise SpecError(
                    f"'{name}' calls {which}; a function may call the built-ins and the "
                    "[functions] above it, so no function calls itself, even through others",
                    key=key,
                )
        costs[name] = body_cost(tree, {**BUILTIN_COSTS, **costs})
        if costs[name] > FUNCTION_BUDGET:
            raise SpecError(
                f"the body {quoted(body)} calls too many functions for symbp to differentiate "
                f"quickly (cost {costs[name]}, at most {FUNCTION_BUDGET}; "
                f"{', '.join(n for n, c in BUILTIN_COSTS.items() if c > 1)} cost 2, other "
                "functions 1, a [functions] entry what "
                "its own body costs); split it into steps of a [graph]",
                key=key,
            )
        out[name] = body
        if sum(costs.values()) > FUNCTIONS_BUDGET:
            raise SpecError(
                f"the [functions] up to '{name}' cost {sum(costs.values())} together, more than "
                f"{FUNCTIONS_BUDGET} (see the cost of one body); define fewer or simpler ones",
                key=key,
            )
    return out


def body_cost(tree: Any, costs: Mapping[str, int]) -> int:
    """The calls in a ``[functions]`` body, each weighted by its function's cost (an unknown
    name costs 1 here; deriving the body reports it)."""
    return sum(costs.get(node.func, 1) for node in walk(tree) if isinstance(node, Call))


def _check_network_names(network: Network, functions: Mapping[str, str]) -> None:
    """A ``[functions]`` entry must not be named like a value of the network's code (``A1``)."""
    values = network_values(len(network.layers))
    for name in functions:
        for value in values:
            base = clashes(name, value)
            if base is not None:
                raise SpecError(
                    f"'{name}' collides with '{base}', a value of the network's generated code; "
                    "choose another function name",
                    key=f"functions.{name}",
                )


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
        _only_keys(raw, {"units", "activation", "bias"}, lp)
        units = _int(raw, "units", lp, 1, MAX_UNITS)
        bias = raw.get("bias", True)
        if not isinstance(bias, bool):
            raise SpecError(f"must be true or false, got {_kind(bias)}", key=lp + "bias")
        activation = _string(raw, "activation", lp, required=False) or "identity"
        if activation not in known:
            raise SpecError(
                f"unknown activation '{activation}'; known: {', '.join(known)} "
                "(or define it under [functions])",
                key=lp + "activation",
            )
        layers.append(Layer(units, activation, bias))
    loss = _string(table, "loss", p, required=True)
    if loss not in LOSSES:
        raise SpecError(f"unknown loss '{loss}'; known: {', '.join(LOSSES)}", key=p + "loss")
    if LOSSES[loss].takes_logits and layers[-1].activation != "identity":
        raise SpecError(
            f"{loss} takes logits, so the last layer's activation must be 'identity' "
            f"(got '{layers[-1].activation}'); the loss applies the "
            f"{LOSSES[loss].prediction} itself",
            key=f"{p}layers[{len(layers) - 1}].activation",
        )
    reduction = _string(table, "reduction", p, required=False) or "mean"
    if reduction not in REDUCTIONS:
        raise SpecError(f"must be 'mean' or 'sum', got '{reduction}'", key=p + "reduction")
    l2 = table.get("l2")
    if l2 is not None:
        if isinstance(l2, bool) or not isinstance(l2, int | float) or not 0 <= l2 <= 1e300:
            raise SpecError(f"must be a number ≥ 0 (at most 1e300), got {_kind(l2)}", key=p + "l2")
        l2 = float(l2)
    return Network(inputs, tuple(layers), loss, reduction, l2)


# ---- [graph] -------------------------------------------------------------------------

MAX_STEPS = 1000
MAX_DIM = 10_000_000
_DIM = re.compile(r"^\s*(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+)\s*$")


def read_graph(table: Any) -> Graph:
    """Validate the ``[graph]`` table's keys and types (steps are parsed when built)."""
    if not isinstance(table, dict):
        raise SpecError(f"must be a table, got {_kind(table)}", key="graph")
    p = "graph."
    _only_keys(table, {"inputs", "params", "constants", "steps", "loss", "output"}, p)
    inputs = _declared(table, "inputs", required=False)
    params = _declared(table, "params", required=True)
    if not params:
        raise SpecError("declare at least one parameter to differentiate", key=p + "params")
    constants = table.get("constants", {})
    if not isinstance(constants, dict):
        raise SpecError(
            f"must be a table of name = number, got {_kind(constants)}", key=p + "constants"
        )
    for name, value in constants.items():
        check_name(name, "constant name", key=f"{p}constants.{name}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(f"must be a number, got {_kind(value)}", key=f"{p}constants.{name}")
        if value != value or not abs(value) <= 1e300:
            raise SpecError(
                "must be a finite number of at most 1e300 in size", key=f"{p}constants.{name}"
            )
    steps = table.get("steps")
    if not isinstance(steps, list) or not steps:
        raise SpecError('must be a non-empty list of "name = expression" strings', key=p + "steps")
    if len(steps) > MAX_STEPS:
        raise SpecError(f"at most {MAX_STEPS} steps", key=p + "steps")
    for i, step in enumerate(steps):
        if not isinstance(step, str):
            raise SpecError(f"must be a string, got {_kind(step)}", key=f"{p}steps[{i}]")
    loss = table.get("loss")
    if not isinstance(loss, str):
        raise SpecError(
            "missing or not a string: name the step that computes the loss", key=p + "loss"
        )
    output = table.get("output")
    if output is not None and not isinstance(output, str):
        raise SpecError(
            f"must be a string naming the step predict returns, got {_kind(output)}",
            key=p + "output",
        )
    seen: dict[str, str] = {}
    for group, names in (("inputs", inputs), ("params", params), ("constants", constants)):
        for name in names:
            if name in seen:
                raise SpecError(
                    f"'{name}' is declared in both {seen[name]} and {group}",
                    key=f"{p}{group}.{name}",
                )
            seen[name] = group
    constants = {k: float(v) for k, v in constants.items()}
    return Graph(inputs, params, constants, tuple(steps), loss, output)


def _declared(table: Mapping[str, Any], key: str, *, required: bool) -> dict[str, str]:
    value = table.get(key)
    if value is None:
        if required:
            raise SpecError(
                'missing; declare names and shapes, e.g. { w = "scalar" }', key=f"graph.{key}"
            )
        return {}
    if not isinstance(value, dict):
        raise SpecError(
            f'must be a table of name = "shape", got {_kind(value)}', key=f"graph.{key}"
        )
    for name, shape in value.items():
        where = f"graph.{key}.{name}"
        check_name(name, key[:-1] + " name", key=where)
        if not isinstance(shape, str):
            raise SpecError(
                f'must be a shape string like "scalar", "n" or "m x n", got {_kind(shape)}',
                key=where,
            )
        parse_shape(shape, key=where)
    return dict(value)


def parse_shape(text: str, *, key: str | None = None) -> Shape:
    """``"scalar"`` → (), ``"n"`` → ("n",), ``"m x 3"`` → ("m", 3)."""
    if text.strip() == "scalar":
        return ()
    parts = re.split(r"\s+x\s+|\s*×\s*", text.strip())
    if not 1 <= len(parts) <= 2 or not all(_DIM.match(p) for p in parts):
        raise SpecError(
            f'bad shape {text!r}: use "scalar", "n" or "m x n" (sizes are integers or names)',
            key=key,
        )
    dims: list[int | str] = []
    for part in parts:
        part = part.strip()
        if part == "scalar":
            raise SpecError(
                f'bad shape {text!r}: "scalar" stands alone; a size is an integer or a name',
                key=key,
            )
        if part.isdigit():
            size = int(part)
            if not 1 <= size <= MAX_DIM:
                raise SpecError(f"size {part} must be between 1 and {MAX_DIM}", key=key)
            dims.append(size)
        else:
            check_name(part, "size name", key=key, value=False)
            dims.append(part)
    return tuple(dims)
