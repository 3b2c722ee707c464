"""The math-string parser: trees for allowed input, ParseError for everything else."""

from __future__ import annotations

import contextlib
import re
import time

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from symbp.front.parse import (
    BinOp,
    Call,
    Name,
    Neg,
    Num,
    ParseError,
    Transpose,
    check_identifier,
    names_in,
    parse_expression,
    parse_step,
    to_sympy,
)

x, y, t = Name("x"), Name("y"), Name("t")


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("x + y * t", BinOp("+", x, BinOp("*", y, t))),
        ("-x**2", Neg(BinOp("**", x, Num(sympy.Integer(2))))),
        ("(y - t)**2 / 2", BinOp("/", BinOp("**", BinOp("-", y, t), Num(2)), Num(2))),
        ("x @ y + t", BinOp("+", BinOp("@", x, y), t)),
        ("x.T @ y", BinOp("@", Transpose(x), y)),
        ("sum(x, axis=0)", Call("sum", (x,), 0)),
        ("mean(x, axis=-1)", Call("mean", (x,), -1)),
        ("softmax_cross_entropy(x, t)", Call("softmax_cross_entropy", (x, t))),
        ("+x", x),
        ("0.1 * x", BinOp("*", Num(sympy.Rational(1, 10)), x)),
        ("1e-3", Num(sympy.Rational(1, 1000))),
    ],
)
def test_trees(text, tree):
    assert parse_expression(text) == tree


def test_step_and_names():
    target, tree = parse_step("z = w*x + b")
    assert target == "z"
    assert names_in(tree) == ["w", "x", "b"]


def test_to_sympy_builds_the_expression():
    z = sympy.Symbol("z")
    sigmoid = sympy.Function("sigmoid")
    expr = to_sympy(parse_expression("z * sigmoid(z) - 0.5"), {"z": z}, {"sigmoid": sigmoid})
    assert expr == z * sigmoid(z) - sympy.Rational(1, 2)
    with pytest.raises(ParseError, match="unknown name 'q'"):
        to_sympy(parse_expression("z * q"), {"z": z}, {})
    with pytest.raises(ParseError, match="unknown function 'f'"):
        to_sympy(parse_expression("f(z)"), {"z": z}, {})
    with pytest.raises(ParseError, match="`@` is not allowed"):
        to_sympy(parse_expression("z @ z"), {"z": z}, {})


REJECTED = [
    ("__import__('os').system('ls')", "named functions"),
    ("__import__('os')", "double underscores"),
    ("x.__class__", "attribute '.__class__'"),
    ("x.shape", "only `.T`"),
    ("x[0]", "subscripts"),
    ("lambda q: q", "lambdas"),
    ("[q for q in x]", "comprehensions"),
    ("{1: 2}", "dicts"),
    ("(1, 2)", "tuples"),
    ("'abc'", "strings are not allowed"),
    ("f'{x}'", "strings"),
    ("x if y else t", "if-expressions"),
    ("x < y", "comparisons"),
    ("x and y", "'and' / 'or'"),
    ("not x", "'not'"),
    ("~x", "'~'"),
    ("x // y", "'//'"),
    ("x % y", "'%'"),
    ("x | y", "'|'"),
    ("x << 2", "'<<'"),
    ("10**10**10", "nested powers"),
    ("2**1000", "exponents are limited"),
    ("((9**64)**64)**64", "power of a power"),
    ("9**64 * 10**64 ** 1", "nested powers"),
    ("(" * 500 + "x" + ")" * 500, "too deeply nested"),
    ("(" * 5000 + "x" + ")" * 5000, "longer than"),
    ("-" * 5000 + "x", "longer than"),
    ("x+" * 1500 + "x", "longer than"),
    ("1e999", "not finite"),
    ("True", "not a number"),
    ("None", "not a number"),
    ("x.T()", "named functions"),
    ("f(*x)", "starred"),
    ("f(**x)", "keyword"),
    ("f(y=1)", "keyword 'y'"),
    ("sum(x, axis=y)", "axis= takes a small integer"),
    ("(x := 1)", "':='"),
    ("", "empty"),
    ("x +", "syntax error"),
    ("1" * 50, "longer than 40"),
    # characters outside the grammar: they could end a docstring the text is quoted in
    ('z # """ + print(1) + """', "comments (#) are not allowed"),
    ("(x \\\n + y)", "backslashes are not allowed"),
    ("\uff57 * x", "U+FF57"),
    ("x\u00b7y", "not a valid name"),
    ("1e-400", "outside the range of a float"),
    ("1e301", "outside the range of a float"),
    # nested powers whose exponents SymPy multiplies: z**256 would take SymPy minutes
    ("(z**16)**16", "product of nested powers"),
    ("(2 * z**16 / 3)**16", "product of nested powers"),
]


@pytest.mark.parametrize(("text", "fragment"), REJECTED)
def test_rejected(text, fragment):
    start = time.perf_counter()
    with pytest.raises(ParseError) as info:
        parse_expression(text)
    assert fragment in info.value.message
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("z * log(0)", "not a finite real number"),
        ("z * sqrt(-1)", "not a finite real number"),
        ("z + (-8)**(1/3)", "is not real"),
        ("z * (-2)**z", "is not real"),
        ("z * 1e200 * 1e200", "outside the range of a float"),
        ("z * exp(1000)", "outside the range of a float"),
        ("z * exp(exp(exp(exp(100))))", "outside the range of a float"),
        ("z**40 * z**40", "after SymPy combines powers (here z**80)"),
    ],
)
def test_to_sympy_refuses_constants_that_are_not_float64(text, fragment):
    """SymPy folds constants as it builds; the module could compute none of these."""
    start = time.perf_counter()
    z = sympy.Symbol("z")
    functions = {"log": sympy.log, "sqrt": sympy.sqrt, "exp": sympy.exp}
    with pytest.raises(ParseError) as info:
        to_sympy(parse_expression(text), {"z": z}, functions)
    assert fragment in info.value.message
    assert time.perf_counter() - start < 5


def test_powers_of_sums_and_of_calls_are_not_nested_powers():
    z = sympy.Symbol("z")
    assert to_sympy(parse_expression("(z**2 + 1)**64"), {"z": z}, {}) == (z**2 + 1) ** 64
    assert to_sympy(parse_expression("((z**4)**4)**4"), {"z": z}, {}) == z**64
    expr = to_sympy(parse_expression("exp(z**2)**64"), {"z": z}, {"exp": sympy.exp})
    assert expr == sympy.exp(64 * z**2)


def test_to_sympy_keeps_ordinary_constants():
    z = sympy.Symbol("z")
    expr = to_sympy(
        parse_expression("z * exp(2) + 1e300 * z - 1e-300"), {"z": z}, {"exp": sympy.exp}
    )
    assert expr == z * sympy.exp(2) + sympy.Integer(10) ** 300 * z - sympy.Rational(1, 10**300)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a = b = c", "one name per step"),
        ("a += 1", "augmented"),
        ("x[0] = 1", "plain name"),
        ("class = 1", "syntax error"),
        ("print(x); x", "one assignment"),
        ("x", "assignment"),
    ],
)
def test_rejected_steps(text, fragment):
    with pytest.raises(ParseError) as info:
        parse_step(text)
    assert fragment in info.value.message


@pytest.mark.parametrize("name", ["W1", "b_2", "lam"])
def test_identifiers_accepted(name):
    check_identifier(name, "name")


@pytest.mark.parametrize("name", ["1x", "class", "__x__", "a-b", ""])
def test_identifiers_rejected(name):
    with pytest.raises(ParseError):
        check_identifier(name, "name")


names = st.sampled_from(["x", "y", "W1", "b"])
atoms = names | st.integers(0, 9).map(str)


def _has_name(text: str) -> bool:
    """Powers of numbers only are bounded separately (they are rejected when nested)."""
    return re.search(r"\b(x|y|W1|b)\b", text) is not None


def _combine(children):
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/", "@"]), children)
    return (
        binary.map(lambda p: f"({p[0]} {p[1]} {p[2]})")
        | st.tuples(children.filter(_has_name), st.integers(0, 3)).map(
            lambda p: f"({p[0]})**{p[1]}"
        )
        | children.map(lambda c: f"({c}).T")
        | children.map(lambda c: f"tanh({c})")
        | children.map(lambda c: f"-{c}")
    )


expressions = st.recursive(atoms, _combine, max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(expressions)
def test_wellformed_expressions_parse_deterministically(text):
    try:
        first = parse_expression(text)
    except ParseError as err:
        # ((x**3)**3)**3)**3: exponents multiply beyond ±64, the one refusal of this grammar
        assert "product of nested powers" in err.message
        return
    assert first == parse_expression(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_or_raises_parse_error(text):
    with contextlib.suppress(ParseError):
        parse_expression(text)
