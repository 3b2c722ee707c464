"""The printers, string for string: NumPy code as ruff writes it, LaTeX as a lecturer does,
docstring text as it reads. Each expected string is written by hand here."""

from __future__ import annotations

import pytest
import sympy

from symbp.emit.printing import LatexPrinters, Printers
from symbp.ir.functions import builtin_table

T = builtin_table()
a, b, c, m, x, y, z = sympy.symbols("a b c m x y z")
W1, dZ1 = sympy.symbols("W1 dZ1")


@pytest.mark.parametrize(
    ("expr", "code"),
    [
        (a + b, "a + b"),
        (a - b, "a - b"),
        (-a + b, "b - a"),  # positive terms first, as written
        (-a - b, "-a - b"),
        (a * b, "a * b"),
        (a / b, "a / b"),
        (a / (b * c), "a / (b * c)"),
        ((a - b) / m, "(a - b) / m"),
        (a**2, "a**2"),
        ((a + b) ** 2, "(a + b) ** 2"),
        (a ** sympy.Rational(1, 2), "np.sqrt(a)"),
        (1 / a, "1 / a"),
        (a ** (-2), "1 / a**2"),
        (sympy.Rational(1, 2) * a, "a / 2"),
        (sympy.Rational(3, 4), "3 / 4"),
        (-2 * a, "-2 * a"),
        (a * (1 - b), "a * (1 - b)"),
        (sympy.pi * a, "3.141592653589793 * a"),  # a Python float: float32 stays float32
        (T["tanh"](a), "np.tanh(a)"),
        (T["exp"](a) + 1, "np.exp(a) + 1"),
        (T["sin"](a) * T["cos"](b), "np.sin(a) * np.cos(b)"),
        (T["sigmoid"](a + b), "sigmoid(a + b)"),
        (T["softplus"](a), "np.logaddexp(0, a)"),
        (T["silu"](a + b), "(a + b) * sigmoid(a + b)"),
        (T["maximum"](a, b), "np.maximum(a, b)"),
        (T["abs"](a), "np.abs(a)"),
        (T["log1p"](a), "np.log1p(a)"),
        (sympy.Piecewise((a, b > 0), (c, True)), "np.where(b > 0, a, c)"),
        (
            sympy.Piecewise((a, (b > 0) & (c > 0)), (0, True)),
            "np.where((b > 0) & (c > 0), a, 0)",
        ),
    ],
)
def test_numpy_code(expr, code):
    assert Printers(T).numpy(expr) == code


def test_numpy_values_keep_the_shape_and_dtype():
    pr = Printers(T, arrays={"W", "r", "x"})
    r = sympy.Symbol("r")
    assert pr.numpy_value(sympy.Integer(0), ["W"]) == "np.zeros_like(W)"
    assert pr.numpy_value(x + 1, ["W", "x"]) == "x + 1 + np.zeros_like(W)"
    relu_prime = sympy.Piecewise((1, r > 0), (0, True))
    assert pr.numpy_value(relu_prime, ["r"]) == "np.asarray(np.where(r > 0, 1, 0), dtype=r.dtype)"
    lam = sympy.Symbol("lam")  # a constant, a Python float: a value of constants stays one
    assert pr.numpy_value(T["tanh"](lam), ["lam"]) == "float(np.tanh(lam))"


@pytest.mark.parametrize(
    ("expr", "tex"),
    [
        (a + b, "a + b"),
        (-a + b, "b - a"),
        (a / b, r"\frac{a}{b}"),
        (T["sigmoid"](a), r"\sigma\left(a\right)"),
        (T["relu"](a), r"\operatorname{relu}\left(a\right)"),
        (T["sqrt"](a + 1), r"\sqrt{a + 1}"),
        (T["abs"](a), r"\left|a\right|"),
        (T["maximum"](a, b), r"\max\left(a, b\right)"),
        (T["tanh"](a) ** 2, r"\tanh^{2}\left(a\right)"),
        (W1 * x, r"W_{1} x"),
    ],
)
def test_latex(expr, tex):
    pr = LatexPrinters(T, {"W1": "W_{1}", "dZ1": r"\bar{Z}_{1}"}, frozenset())
    assert pr.latex(expr) == tex


def test_latex_writes_products_of_arrays_with_odot():
    pr = LatexPrinters(T, {"dZ1": r"\bar{Z}_{1}"}, frozenset({"dZ1", "a"}))
    # Factors in SymPy's order (a before dZ1), scalars in front, sums bracketed.
    assert pr.latex(dZ1 * a * (1 - a)) == r"a \odot \bar{Z}_{1} \odot \left(1 - a\right)"
    assert pr.latex(2 * dZ1 * a) == r"2 \left(a \odot \bar{Z}_{1}\right)"
    assert pr.latex(dZ1 * m) == r"\bar{Z}_{1} m"  # one array: no ⊙, SymPy's order


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        (a + b, "a + b"),
        (-a + b, "b - a"),
        (T["sigmoid"](a) * (1 - T["sigmoid"](a)), "(1 - sigmoid(a))*sigmoid(a)"),
        (T["maximum"](a, b), "maximum(a, b)"),
        (sympy.Piecewise((a, a > 0), (0, True)), "(a if a > 0, 0 otherwise)"),
    ],
)
def test_docstring_text(expr, text):
    assert Printers(T).text(expr) == text
