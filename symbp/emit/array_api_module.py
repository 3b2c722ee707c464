"""The array API module: the same derivation as the NumPy module, printed for any array library.

Each assignment is printed by its op record's ``array_api`` form, and each function call by its
function entry's :class:`~symbp.ir.functions.ArrayApiForm`: this module only puts the lines in
order. The generated code takes ``xp = array_namespace(...)`` of its arguments
(array-api-compat), calls only the standard's functions, writes into no array (the arrays of
JAX cannot be written, those of Dask are lazy) and reads no array's values in Python, so the
same code runs on NumPy, CuPy, PyTorch, JAX and Dask arrays, on their device.

Its functions are a list the template prints in order (:class:`Function`): a new function over
another Program (a Hessian-vector product, say) is one more entry built by :func:`body`.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field

from symbp.analysis.rows import RowSplit, row_split, rowwise
from symbp.derivation import Derivation
from symbp.emit.layout import LINE_WIDTH, bracketed, short_statements, too_long, unpack
from symbp.emit.module_parts import (
    argument_doc,
    backward_unpack,
    cached_values,
    helper_sources,
    init_rule,
    init_sizes,
    input_checks,
    module_header,
    predict_doc,
    signature,
    wrap,
)
from symbp.emit.printing import Printers
from symbp.emit.templating import render
from symbp.ir.ops import OPS
from symbp.ir.program import Eqn, Program
from symbp.provenance import stamp_text

CONVERT = "xp, dtype, dev"
"""What the module's input converters take last: the namespace, the dtype and the device."""
CONSTANT = "xp.asarray(float({c}), dtype=dtype, device=dev)"
"""A constant becomes a 0-d array, so that every value the functions compute is an array."""


@dataclass
class Function:
    """One generated function: its ``def`` line(s), docstring lines and body lines."""

    define: list[str]
    doc: list[str]
    body: list[str] = field(default_factory=list)


def generate(derivation: Derivation) -> str:
    """The array API module's source text under symbp's header line (deterministic)."""
    return stamp_text(render("array_api_module.py.j2", module_context(derivation)))


def module_context(derivation: Derivation) -> dict:
    program, predict = derivation.program, derivation.predict
    printers = _printers(derivation)
    cached = cached_values(program)
    split = row_split(program)
    functions = [
        _forward(program, printers, cached),
        _backward(program, printers, cached),
        _loss_and_grad(program),
    ]
    if predict is not None:
        functions.append(_predict(program, predict, printers))
    functions += _second_order(derivation, printers)
    return {
        **module_header(derivation, printers),
        "row_split": _row_split(
            split, predict is not None and split.size is not None and rowwise(predict, split.size)
        ),
        "helpers": _helpers(derivation, printers),
        "init_signature": bracketed(
            "def init_params(",
            ["xp", "rng=None", "dtype=None", "device=None", *_named_sizes(program)],
            "):",
            indent=0,
        ),
        "init": [(p, _init_code(program, p)) for p in program.params],
        "init_rest": "zero" if program.meta.get("kind") == "network" else "~ N(0, 0.1²)",
        "functions": functions,
        "first_param": program.params[0],
        "program_inputs": any(p.inputs for p in (program, predict) if p is not None),
        "labels": bool(program.meta.get("labels")),
    }


def body(eqns: list[Eqn], printers: Printers) -> list[str]:
    """The assignments as statements, each a new array (nothing is written in place)."""
    lines = []
    for eqn in eqns:
        made = [f"{eqn.out} = {OPS[eqn.op].array_api(list(eqn.args), dict(eqn.attrs), printers)}"]
        if eqn.op == "ewise" and too_long(made):
            made = short_statements(eqn.out, eqn.attr("expr"), printers.array_api)
        lines += made
    return lines


def _printers(derivation: Derivation) -> Printers:
    shapes = {n: v.shape for n, v in derivation.hvp.program.vars.items()}
    shapes |= {n: v.shape for n, v in derivation.program.vars.items()}
    if derivation.predict is not None:
        shapes |= {n: v.shape for n, v in derivation.predict.vars.items()}
    return Printers(derivation.functions, shapes=shapes)


def _prologue(program: Program, inputs: list[str]) -> list[str]:
    """The namespace of the arguments, the checked parameters, their dtype and device, and
    the inputs and constants converted to arrays of them."""
    first = program.params[0]
    return [
        *bracketed("xp = _namespace(", ["params", *(f"{n}={n}" for n in inputs)], ")"),
        "dims = {}",
        *unpack(program.params, "_params(xp, params, dims)", indent=4),
        f"dtype, dev = {first}.dtype, array_device({first})",
        *input_checks(program, to=CONVERT, constant=CONSTANT),
    ]


def _forward(program: Program, printers: Printers, cached: list[str]) -> Function:
    doc = [
        "Loss and the values the backward pass needs.",
        "",
        "Parameters",
        "----------",
        "params : dict",
        "    Arrays keyed and shaped as ``PARAM_SHAPES``, all of one real floating dtype, of one",
        "    array library and on one device.",
    ]
    for name, kind, lines in argument_doc(program):
        doc += [f"{name} : {kind}", *(f"    {line}" for line in lines)]
    doc += [
        "",
        "Returns",
        "-------",
        "loss : 0-d array of the parameters' dtype",
        "cache : dict",
        "    Input to ``backward``.",
    ]
    lines = _prologue(program, program.inputs)
    lines += body(program.forward_eqns, printers)
    entries = [f'    "{c}": {c},' for c in cached]
    lines += ["cache = {", *entries, "}"] if cached else ["cache = {}"]
    lines.append(f"return {program.loss}, cache")
    define = bracketed("def forward(", signature(program), "):", indent=0)
    return Function(define, doc, lines)


def _backward(program: Program, printers: Printers, cached: list[str]) -> Function:
    lines = ["xp = _namespace(params)"]
    lines += backward_unpack(program, cached, call="_params(xp, params, {})")
    printers.reads_dtype = False
    computed = body(program.backward_eqns, printers)
    if printers.reads_dtype:  # a number made an array: of the parameters' dtype and device
        first = f'params["{program.params[0]}"]'
        lines.append(f"dtype, dev = {first}.dtype, array_device({first})")
    lines += computed
    lines += ["return {", *(f'    "{p}": {g},' for p, g in program.grads.items()), "}"]
    doc = ["Gradients of the loss, keyed and shaped like ``params``, from ``forward``'s cache."]
    return Function(["def backward(params, cache):"], doc, lines)


def _loss_and_grad(program: Program) -> Function:
    call = bracketed(
        "loss, cache = forward(",
        ["params", *program.inputs, *(f"{c}={c}" for c in program.consts)],
        ")",
    )
    return Function(
        bracketed("def loss_and_grad(", signature(program), "):", indent=0),
        ["``(loss, grads)`` in one call: ``forward`` then ``backward``."],
        [*call, "return loss, backward(params, cache)"],
    )


def _predict(program: Program, predict: Program, printers: Printers) -> Function:
    lines = _prologue(predict, predict.inputs)
    lines += body(predict.eqns, printers)
    lines.append(f"return {predict.loss}")
    define = bracketed("def predict(", signature(predict), "):", indent=0)
    return Function(define, wrap(predict_doc(program, predict)), lines)


def _second_order(derivation: Derivation, printers: Printers) -> list[Function]:
    """``hvp`` and ``loss_grad_hvp``: the Hessian-vector product's Program, as the NumPy
    module computes it (``hessian``, which sets one entry of V at a time, is the NumPy
    module's alone: the array API has no writes)."""
    program, second = derivation.program, derivation.hvp
    arg = second.argument
    directions = unpack(
        list(second.directions.values()), f'_directions("{arg}", {arg}, xp, dims, dtype, dev)'
    )
    hv = [f'    "{p}": {h},' for p, h in second.hv.items()]
    hv_outputs = set(second.hv.values())
    everything = {program.loss, *program.grads.values(), *hv_outputs}
    hvp_lines = [*_prologue(program, program.inputs), *directions]
    hvp_lines += body(second.eqns_for(hv_outputs), printers)
    hvp_lines += ["return {", *hv, "}"]
    all_lines = [*_prologue(program, program.inputs), *directions]
    all_lines += body(second.eqns_for(everything), printers)
    all_lines += ["grads = {", *(f'    "{p}": {g},' for p, g in program.grads.items()), "}"]
    all_lines += ["hv = {", *hv, "}", f"return {program.loss}, grads, hv"]
    return [
        Function(
            bracketed("def hvp(", signature(program, arg), "):", indent=0),
            [
                f"The Hessian of the loss times ``{arg}``: H·{arg}, keyed and shaped like "
                "``params``.",
                "",
                f"``{arg}`` is a dict of arrays keyed and shaped like ``params``, of their "
                "library, dtype and",
                "device; the other arguments are ``forward``'s.",
            ],
            hvp_lines,
        ),
        Function(
            bracketed("def loss_grad_hvp(", signature(program, arg), "):", indent=0),
            [f"``(loss, grads, hv)`` in one call, the passes shared: ``hv`` is H·{arg}."],
            all_lines,
        ),
    ]


def _row_split(split: RowSplit, predict: bool) -> list[str]:
    """``ROW_SPLIT = {...}``, one key a line, the reason wrapped into short strings."""
    why = textwrap.wrap(split.note, LINE_WIDTH - 15, drop_whitespace=False)
    lines = [
        "ROW_SPLIT = {",
        f'    "size": {_literal(split.size)},',
        f'    "loss": {_literal(split.loss)},',
        f'    "predict": {predict},',
    ]
    if len(why) == 1:
        return [*lines, f'    "why": {json.dumps(why[0])},', "}"]
    return [*lines, '    "why": (', *(f"        {json.dumps(w)}" for w in why), "    ),", "}"]


def _literal(text: str | None) -> str:
    return "None" if text is None else json.dumps(text)


def _named_sizes(program: Program) -> list[str]:
    sizes = init_sizes(program)
    return ["*", *sizes] if sizes else []


def _init_code(program: Program, name: str) -> str:
    rule, code, fan_in = init_rule(program, name)
    if rule == "zeros":
        return f"xp.zeros({code}, dtype=dtype, device=device)"
    if rule == "fan_in":
        return f"_normal(xp, rng, {code}, 1 / math.sqrt({fan_in}), dtype, device)"
    return f"_normal(xp, rng, {code}, 0.1, dtype, device)"


def _helpers(derivation: Derivation, printers: Printers) -> list[str]:
    """The helper functions the module's lines call (stable sigmoid, the losses), each taking
    the namespace ``xp`` first."""
    return helper_sources(
        (derivation.program, derivation.predict),
        lambda op: op.array_api_helpers,
        printers.xp_code,
        derivation.functions,
        lambda entry: entry.array_api,
        "xp, z",
    )
