"""The NumPy module: a template context of plain strings built from the gradient Program.

The template only loops and prints; every decision (names, what the cache holds, which helper
functions the module defines) is made here, from the Program.
"""

from __future__ import annotations

from symbp.derivation import Derivation
from symbp.emit.buffers import plan_buffers
from symbp.emit.layout import bracketed, delete, short_statements, too_long, unpack
from symbp.emit.module_parts import (
    argument_doc,
    backward_unpack,
    cached_values,
    doc_lines,
    helper_sources,
    init_rule,
    init_sizes,
    input_checks,
    module_header,
    predict_doc,
    signature,
)
from symbp.emit.printing import Printers
from symbp.emit.templating import render
from symbp.ir.ops import HELPER_SOURCES, OPS
from symbp.ir.program import Eqn, Program
from symbp.provenance import stamp_text

HESSIAN_LIMIT = 2000
"""The most parameter entries a generated module's ``hessian`` makes the full Hessian of:
2,000 entries make 4 million, 32 MB in float64, and 2,000 calls of ``hvp``."""


def generate(derivation: Derivation) -> str:
    """The generated module's source text under symbp's header line (deterministic: no dates,
    no absolute paths)."""
    return stamp_text(render("numpy_module.py.j2", module_context(derivation)))


def module_context(derivation: Derivation) -> dict:
    program = derivation.program
    second = derivation.hvp
    arrays = program.arrays() | second.program.arrays()
    arrays |= derivation.predict.arrays() if derivation.predict else set()
    printers = Printers(derivation.functions, arrays=arrays)
    cached = cached_values(program)
    forward = _lines(program.forward_eqns, printers, program, {*cached, program.loss})
    backward = _lines(program.backward_eqns, printers, program, set(program.grads.values()))
    predict_lines: list[str] = []
    if derivation.predict is not None:
        predict = derivation.predict
        predict_lines = _lines(predict.eqns, printers, predict, {predict.loss})
    hv_outputs = set(second.hv.values())
    hv_eqns = second.eqns_for(hv_outputs)
    everything = {program.loss, *program.grads.values(), *hv_outputs}
    all_eqns = second.eqns_for(everything)
    hvp_lines = _lines(hv_eqns, printers, second.program, hv_outputs)
    all_lines = _lines(all_eqns, printers, second.program, everything)
    helpers = _helpers([program, derivation.predict, second.program], printers)
    first = program.params[0]
    return {
        **module_header(derivation, printers),
        "helpers": helpers,
        "init_dims": _init_dims(program),
        "init_rest": "zero" if program.meta.get("kind") == "network" else "~ N(0, 0.1²)",
        "init": [(p, _init_code(program, p)) for p in program.params],
        "forward_def": bracketed("def forward(", signature(program), "):", indent=0),
        "loss_and_grad_def": bracketed("def loss_and_grad(", signature(program), "):", indent=0),
        "forward_call": bracketed(
            "loss, cache = forward(",
            ["params", *program.inputs, *(f"{c}={c}" for c in program.consts)],
            ")",
        ),
        "program_inputs": bool(program.inputs),
        "argument_doc": argument_doc(program),
        "param_unpack": unpack(program.params, "_params(params, dims)"),
        "first_param": first,
        "input_checks": input_checks(program),
        "forward_lines": forward,
        "cache": cached,
        "loss": program.loss,
        "backward_unpack": backward_unpack(program, cached),
        "backward_lines": backward,
        "grads": list(program.grads.items()),
        "predict_lines": predict_lines,
        "predict_output": derivation.predict.loss if derivation.predict else "",
        "predict_doc": predict_doc(program, derivation.predict),
        # A network's predict takes X; a graph's the inputs and constants its output reads.
        "predict_def": bracketed("def predict(", signature(derivation.predict), "):", indent=0)
        if derivation.predict
        else [],
        "predict_inputs": bool(derivation.predict and derivation.predict.inputs),
        "predict_checks": input_checks(derivation.predict) if derivation.predict else [],
        "hvp_doc": doc_lines(second.second_eqns, second.program, printers)
        + [f"hv[{p!r}] = {h}" for p, h in second.hv.items()],
        "hvp_def": bracketed("def hvp(", signature(program, second.argument), "):", indent=0),
        "loss_grad_hvp_def": bracketed(
            "def loss_grad_hvp(", signature(program, second.argument), "):", indent=0
        ),
        "hessian_limit": HESSIAN_LIMIT,
        "hessian_def": bracketed("def hessian(", signature(program), "):", indent=0),
        "hessian_call": _hessian_call(program, second.argument),
        "direction": second.argument,
        "hvp_unpack": _read_params(program, hv_eqns, "_params(params, dims)"),
        "hvp_checks": input_checks(program, eqns=hv_eqns),
        "direction_unpack": unpack(
            list(second.directions.values()),
            f'_directions("{second.argument}", {second.argument}, dims, dtype)',
        ),
        "hvp_lines": hvp_lines,
        "hv": list(second.hv.items()),
        "all_unpack": _read_params(program, all_eqns, "_params(params, dims)"),
        "all_checks": input_checks(program, eqns=all_eqns),
        "all_lines": all_lines,
        "labels": bool(program.meta.get("labels")),
        "one_hot": "one-hot" in program.meta.get("kinds", {}).values(),
        "probability": "probability" in program.meta.get("kinds", {}).values(),
    }


def _lines(eqns: list[Eqn], printers: Printers, program: Program, keep: set[str]) -> list[str]:
    """The assignments as statements, written into dead arrays where :mod:`buffers` plans so.

    ``keep`` names the values the function hands back (cache, gradients, outputs), whose
    arrays must survive it.
    """
    plan = plan_buffers(eqns, program, keep, printers)
    renamed = plan.renamed
    lines = []
    for eqn in eqns:
        if eqn.out in plan.frees:
            lines += delete(plan.frees[eqn.out])
        if eqn.out in plan.accumulate:
            _, rest = plan.accumulate[eqn.out]
            lines.append(f"{eqn.out} += {printers.numpy(rest)}")
        else:
            out = renamed.get(eqn.out, eqn.out)
            args, attrs = list(eqn.args), dict(eqn.attrs)
            buffer = plan.into.get(eqn.out)
            written = None
            if buffer is not None:
                written = OPS[eqn.op].into(out, renamed.get(buffer, buffer), args, attrs, printers)
            made = written or OPS[eqn.op].statements(out, args, attrs, printers)
            if eqn.op == "ewise" and too_long(made):
                made = short_statements(out, eqn.attr("expr"), printers.numpy)
            lines += made
    return lines


def _init_dims(program: Program) -> str:
    sizes = init_sizes(program)
    return ", *, " + ", ".join(sizes) if sizes else ""


def _init_code(program: Program, name: str) -> str:
    rule, code, fan_in = init_rule(program, name)
    if rule == "zeros":
        return f"np.zeros({code}, dtype=dtype)"
    if rule == "fan_in":
        return f"(rng.standard_normal({code}) / np.sqrt({fan_in})).astype(dtype)"
    return f"(0.1 * rng.standard_normal({code})).astype(dtype)"


def _hessian_call(program: Program, direction: str) -> list[str]:
    """``hessian``'s body: ``hvp`` at this model's arguments, one column at a time."""
    call = ["params", *program.inputs, direction, *(f"{c}={c}" for c in program.consts)]
    return [
        f"def _column({direction}):",
        *(f"    {line}" for line in bracketed("return hvp(", call, ")", indent=8)),
        "",
        "return _hessian(params, _column)",
    ]


def _read_params(program: Program, eqns: list[Eqn], value: str) -> list[str]:
    """The parameters unpacked from ``value``, ``_`` for those ``eqns`` do not read but the
    first (whose dtype the function's arrays take)."""
    read = {a for e in eqns for a in e.reads} | {program.params[0]}
    return unpack([p if p in read else "_" for p in program.params], value)


def _helpers(programs: list[Program | None], printers: Printers) -> list[str]:
    """Helper functions (stable sigmoid, log-sum-exp losses) the module's lines call, by name."""
    return helper_sources(
        programs,
        lambda op: {name: HELPER_SOURCES[name] for name in op.helpers},
        printers.code,
        printers.functions,
        lambda entry: entry.numpy,
        "z",
    )
