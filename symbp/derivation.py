"""From a Model to Programs: the one entry point the CLI, codegen, LaTeX and report share."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from symbp.ad.backprop import backprop
from symbp.ad.hvp import HVP, hvp_program
from symbp.errors import SpecError
from symbp.front.parse import ParseError, parse_expression, to_sympy
from symbp.front.spec import Model, body_cost
from symbp.ir.functions import FunctionTable, Z, builtin_table
from symbp.ir.program import Program
from symbp.lower.graph import build_graph
from symbp.lower.network import build_network


@dataclass
class Derivation:
    """A model's gradient Program (forward then backward), its prediction Program, and its
    Hessian-vector product Program (derived from the gradient Program when first asked for;
    :func:`derive` asks at once)."""

    model: Model
    program: Program
    predict: Program | None
    functions: FunctionTable

    @functools.cached_property
    def hvp(self) -> HVP:
        """H·V as a Program: the gradient Program, ⟨∇L, V⟩, and backprop of that (seed 000's
        Corollary 1)."""
        try:
            return hvp_program(self.program)
        except SpecError as err:
            raise err.located(where=self.model.source) from None


def function_table(model: Model) -> FunctionTable:
    """Built-in functions plus the spec's ``[functions]``, each parsed (never evaluated)."""
    table = builtin_table()
    if not model.functions:
        return table
    for name, body in model.functions.items():
        try:
            tree = parse_expression(body)
            expr = to_sympy(tree, {"z": Z}, table)
        except ParseError as err:
            raise SpecError(f"{err.message} in {body!r}", key=f"functions.{name}") from None
        if Z not in expr.free_symbols:
            raise SpecError(
                f"the body {body!r} does not use its argument z", key=f"functions.{name}"
            )
        cost = body_cost(tree, {n: e.cost for n, e in table.items()})
        table = table.extended({name: (expr, body, cost)})
    return table


def forward_program(model: Model) -> tuple[Program, Program | None, FunctionTable]:
    functions = function_table(model)
    if model.network is not None:
        program, predict = build_network(model.network, model.name, functions)
        program.description = model.description
        return program, predict, functions
    program, predict = build_graph(model, functions)
    return program, predict, functions


def derive(model: Model) -> Derivation:
    """Build the forward Program and append its backward pass; errors name the spec."""
    try:
        program, predict, functions = forward_program(model)
        program.meta["functions"] = functions
        derivation = Derivation(model, backprop(program), predict, functions)
        derivation.hvp  # noqa: B018 (derived now, with the rest: every output has it)
        return derivation
    except SpecError as err:
        raise err.located(where=model.source) from None
