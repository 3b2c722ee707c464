"""Elementwise functions: the derivative backprop uses against SymPy's, from the body alone."""

from __future__ import annotations

import pytest
import sympy

from symbp.analysis.gradcheck import check_module
from symbp.ir.functions import ACTIVATIONS, Z, builtin_table, derivative
from tests.conftest import network_spec

POINTS = [sympy.Rational(p, 1000) for p in (-2500, -700, -1, 0, 1, 300, 1900)]


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_derivative_matches_the_body(name):
    """The rewritten derivative (σ′ = σ(1 − σ), relu′ read off relu(z) > 0, …) equals
    sympy.diff of the plain body, at points on both sides of every kink; relu′(0) = 0."""
    entry = builtin_table()[name]
    table = builtin_table()
    plain = sympy.diff(entry.body, Z)
    used = derivative(entry)
    for point in POINTS:
        value = used.subs(Z, point)
        for _ in range(3):  # table functions in the rewritten form, by their bodies
            value = value.replace(
                lambda e: table.by_class(type(e)) is not None,
                lambda e: table.by_class(type(e)).body.subs(Z, e.args[0]),
            )
        expected = 0 if point == 0 and name == "relu" else plain.subs(Z, point)
        assert abs(sympy.N(value - expected, 30)) < 1e-25, (name, point)


def test_relu_family_reads_the_activation():
    for name in ("relu", "leaky_relu", "elu"):
        entry = builtin_table()[name]
        assert entry.cls(Z) in derivative(entry).atoms(sympy.Function), name


def test_user_function_wrapping_relu_as_an_activation(build_module):
    spec = network_spec(3, [(4, "f"), (2, "identity")], "squared_error")
    spec = spec.replace("[network]", '[functions]\nf = "relu(z)"\n\n[network]')
    module, _ = build_module(spec)
    assert check_module(module).ok


def test_conditions_combined_by_and(build_module):
    """relu(a)·elu(a) differentiates into branches under two conditions at once."""
    module, _ = build_module(
        'name = "both"\n[graph]\ninputs = { x = "m x 3" }\nparams = { w = "3 x 3" }\n'
        'steps = ["a = x @ w", "E = sum(relu(a) * elu(a))"]\nloss = "E"\n'
    )
    assert check_module(module).ok
