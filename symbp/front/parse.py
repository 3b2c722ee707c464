"""Math strings from a spec → a small syntax tree, through a whitelist of Python ``ast`` nodes.

Spec text is untrusted: it is parsed by ``ast.parse`` and walked node by node; nothing is ever
passed to ``eval``, ``exec``, ``sympify`` or ``parse_expr``. Sizes are bounded before parsing
(length, bracket depth) and while walking (tree depth, number literals, exponents), so no input
can hang the parser or build a huge number. The text itself may only hold the characters of the
grammar (no comments, quotes or backslashes, ASCII only), because a ``[functions]`` body is
quoted in the generated module's docstrings.
"""

from __future__ import annotations

import ast
import keyword
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import sympy

MAX_LENGTH = 2000
MAX_BRACKET_DEPTH = 32
MAX_TREE_DEPTH = 64
MAX_NUMBER_CHARS = 40
MAX_EXPONENT = 64
MAX_POWER_DIGITS = 300
MAX_NUMBER = 10**300
"""Numerators and denominators of numbers are at most this, so every number is a float64."""
MAX_QUOTED = 60
OPERATORS = "+ - * / ** @"
ALLOWED_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ \t\n+-*/@().,="
)


class ParseError(ValueError):
    """A math string that is not allowed; ``message`` says what and how to write it."""

    def __init__(self, message: str, text: str = ""):
        self.message = message
        self.text = text
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Num:
    value: sympy.Rational


@dataclass(frozen=True)
class Name:
    id: str


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Neg:
    operand: Node


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Node, ...]
    axis: int | None = None


@dataclass(frozen=True)
class Transpose:
    operand: Node


Node = Num | Name | BinOp | Neg | Call | Transpose

_BINOPS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.MatMult: "@",
}
_REJECTED_OPS = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
}
_REJECTED_NODES = {
    ast.Subscript: "subscripts like x[0]",
    ast.Lambda: "lambdas",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.Compare: "comparisons",
    ast.BoolOp: "'and' / 'or'",
    ast.IfExp: "if-expressions",
    ast.NamedExpr: "':=' assignments",
    ast.Starred: "starred arguments",
    ast.JoinedStr: "strings",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}


def check_identifier(name: str, what: str) -> None:
    """A name a spec may use: a Python identifier, not a keyword, not a dunder name."""
    if not isinstance(name, str) or not name.isidentifier() or not name.isascii():
        raise ParseError(
            f"{name!r} is not a valid {what}: use letters, digits and _, not a leading digit",
            str(name),
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise ParseError(f"{name!r} is a Python keyword and cannot be a {what}; rename it", name)
    if name.startswith("__") and name.endswith("__"):
        raise ParseError(f"{name!r}: names with double underscores are not allowed", name)


def quoted(text: str) -> str:
    """``text`` as a Python literal for a message, shortened to about MAX_QUOTED characters."""
    if len(text) > MAX_QUOTED:
        text = text[: MAX_QUOTED - 1] + "…"
    return repr(text)


def _check_characters(text: str) -> None:
    """Only the grammar's characters: a comment, a quote or a backslash could end a docstring
    the text is quoted in, and non-ASCII letters would be folded into ASCII names by Python."""
    for char in text:
        if char in ALLOWED_CHARACTERS:
            continue
        if char == "#":
            raise ParseError("comments (#) are not allowed in a math string", text)
        if char == "\\":
            raise ParseError(
                "backslashes are not allowed; to break a long expression, use parentheses", text
            )
        raise ParseError(
            f"the character {char!r} (U+{ord(char):04X}) is not allowed: use ASCII names, "
            f"numbers and the operators {OPERATORS}",
            text,
        )


def _precheck(text: object) -> str:
    if not isinstance(text, str):
        raise ParseError(f"expected a math string, got {type(text).__name__}")
    if not text.strip():
        raise ParseError("empty expression", text)
    if len(text) > MAX_LENGTH:
        raise ParseError(f"the expression is longer than {MAX_LENGTH} characters", text[:80])
    depth = 0
    for char in text:
        if char in "([{":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                raise ParseError(
                    f"too deeply nested: more than {MAX_BRACKET_DEPTH} open brackets", text[:80]
                )
        elif char in ")]}":
            depth -= 1
    return text


def _syntax(text: str, mode: str) -> ast.AST:
    try:
        return ast.parse(text, mode=mode)
    except SyntaxError as err:
        where = f" at column {err.offset}" if err.offset else ""
        raise ParseError(
            f"syntax error{where}: {err.msg}; write steps as `name = expression`", text
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise ParseError("cannot parse the expression: too complex", text) from None


def parse_expression(text: str) -> Node:
    """Parse one expression; raises ParseError for anything outside the whitelist."""
    text = _precheck(text)
    tree = _syntax(text, "eval")
    node = _Walker(text).node(tree.body, 0)
    _check_characters(text)
    return node


def parse_step(text: str) -> tuple[str, Node]:
    """Parse ``name = expression``; returns the target name and the expression's tree."""
    text = _precheck(text)
    module = _syntax(text, "exec")
    if len(module.body) != 1:
        raise ParseError("a step is one assignment `name = expression`", text)
    (statement,) = module.body
    if isinstance(statement, ast.AugAssign | ast.AnnAssign):
        raise ParseError("write `name = expression`, not an augmented assignment", text)
    if not isinstance(statement, ast.Assign):
        raise ParseError("a step is an assignment `name = expression`", text)
    if len(statement.targets) != 1:
        raise ParseError("assign one name per step (no `a = b = c`)", text)
    (target,) = statement.targets
    if not isinstance(target, ast.Name):
        raise ParseError("the left side must be a plain name", text)
    check_identifier(target.id, "step target")
    node = _Walker(text).node(statement.value, 0)
    _check_characters(text)
    return target.id, node


class _Walker:
    """Converts whitelisted ast nodes, rejecting everything else with a specific message."""

    def __init__(self, text: str):
        self.text = text

    def fail(self, message: str) -> ParseError:
        """The error; callers add the text (the step or the function body) it occurred in."""
        return ParseError(message, self.text)

    def segment(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.text, node) or ""

    def node(self, node: ast.AST, depth: int) -> Node:
        if depth > MAX_TREE_DEPTH:
            raise self.fail(
                f"the expression is too deeply nested: more than {MAX_TREE_DEPTH} levels (each "
                "term of a long chain of + or * is a level); split it over several steps"
            )
        method = getattr(self, "_" + type(node).__name__, None)
        if method is not None:
            return method(node, depth + 1)
        for kind, what in _REJECTED_NODES.items():
            if isinstance(node, kind):
                raise self.fail(f"{what} are not allowed; allowed operators: {OPERATORS}")
        raise self.fail(f"'{self.segment(node) or type(node).__name__}' is not allowed")

    def _Constant(self, node: ast.Constant, depth: int) -> Node:
        value = node.value
        if isinstance(value, bool) or value is None or value is Ellipsis:
            raise self.fail(f"{value!r} is not a number; only numbers and names are allowed")
        if isinstance(value, str | bytes):
            raise self.fail("strings are not allowed")
        if isinstance(value, complex):
            raise self.fail("complex numbers are not allowed")
        source = self.segment(node)
        if len(source) > MAX_NUMBER_CHARS:
            raise self.fail(
                f"the number {source[:20]}… is longer than {MAX_NUMBER_CHARS} characters"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(f"the number {source} is not finite")
        number = sympy.Integer(value) if isinstance(value, int) else None
        if number is None:
            number = sympy.Rational(source.replace("_", ""))
        if not _in_range(number):
            raise self.fail(f"the number {source} is outside the range of a float (1e±300)")
        return Num(number)

    def _Name(self, node: ast.Name, depth: int) -> Node:
        if node.id.startswith("__") and node.id.endswith("__"):
            raise self.fail(f"'{node.id}': names with double underscores are not allowed")
        check_identifier(node.id, "name")
        return Name(node.id)

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> Node:
        if isinstance(node.op, ast.USub):
            return Neg(self.node(node.operand, depth))
        if isinstance(node.op, ast.UAdd):
            return self.node(node.operand, depth)
        symbol = "not" if isinstance(node.op, ast.Not) else "~"
        raise self.fail(f"'{symbol}' is not allowed; allowed operators: {OPERATORS}")

    def _BinOp(self, node: ast.BinOp, depth: int) -> Node:
        kind = type(node.op)
        if kind in _REJECTED_OPS:
            raise self.fail(
                f"'{_REJECTED_OPS[kind]}' is not allowed; allowed operators: {OPERATORS}"
            )
        op = _BINOPS[kind]
        left = self.node(node.left, depth)
        right = self.node(node.right, depth)
        if op == "**":
            self._check_power(left, right)
        return BinOp(op, left, right)

    def _check_power(self, base: Node, exponent: Node) -> None:
        if _contains_power(exponent):
            raise self.fail(
                "nested powers are not allowed in an exponent; write the exponent as a number"
            )
        value = _numeric(exponent)
        if value is not None and abs(value) > MAX_EXPONENT:
            raise self.fail(f"exponents are limited to ±{MAX_EXPONENT}")
        if value is not None and _contains_power(base) and _only_numbers(base):
            raise self.fail("a power of a power of numbers is not allowed; write the number")
        if value is not None and _degree(base) * _magnitude(value) > MAX_EXPONENT:
            raise self.fail(
                f"exponents are limited to ±{MAX_EXPONENT}, also as the product of nested "
                "powers such as (z**16)**16"
            )
        base_value = _numeric(base)
        if value is not None and base_value is not None:
            magnitude = abs(float(base_value))
            digits = math.log10(magnitude) * abs(float(value)) if magnitude > 0 else 0.0
            if digits > MAX_POWER_DIGITS:
                raise self.fail(f"the number is too large (about 10^{int(digits)})")

    def _Attribute(self, node: ast.Attribute, depth: int) -> Node:
        if node.attr != "T":
            raise self.fail(f"attribute '.{node.attr}' is not allowed; only `.T` (transpose) is")
        return Transpose(self.node(node.value, depth))

    def _Call(self, node: ast.Call, depth: int) -> Node:
        if not isinstance(node.func, ast.Name):
            raise self.fail(
                "only calls of named functions like tanh(x) are allowed, "
                "and only the `.T` attribute"
            )
        name = self._Name(node.func, depth).id
        args = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail("starred arguments are not allowed")
            args.append(self.node(arg, depth))
        axis = None
        for kw in node.keywords:
            if kw.arg != "axis":
                what = "**keyword arguments" if kw.arg is None else f"keyword '{kw.arg}'"
                raise self.fail(f"{what} is not allowed; the only keyword is axis=")
            axis = self._axis(kw.value)
        return Call(name, tuple(args), axis)

    def _axis(self, value: ast.AST) -> int:
        negative = isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub)
        literal = value.operand if negative else value
        if not (
            isinstance(literal, ast.Constant)
            and isinstance(literal.value, int)
            and not isinstance(literal.value, bool)
            and abs(literal.value) < 10
        ):
            raise self.fail("axis= takes a small integer, like axis=0")
        return -literal.value if negative else literal.value


def _contains_power(node: Node) -> bool:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, BinOp):
            if current.op == "**":
                return True
            stack += [current.left, current.right]
        elif isinstance(current, Neg | Transpose):
            stack.append(current.operand)
        elif isinstance(current, Call):
            stack += list(current.args)
    return False


def _magnitude(exponent: sympy.Rational) -> int:
    return max(1, math.ceil(abs(exponent)))


def _degree(node: Node) -> int:
    """The exponent SymPy gives ``node``'s names when it is raised to a power: the product of
    the numeric exponents of nested powers, through products and quotients (SymPy turns
    ``(2*z**16)**16`` into ``65536*z**256``), but not through sums or function calls."""
    if isinstance(node, BinOp) and node.op == "**":
        value = _numeric(node.right)
        return _degree(node.left) * (1 if value is None else _magnitude(value))
    if isinstance(node, BinOp) and node.op in ("*", "/"):
        return max(_degree(node.left), _degree(node.right))
    if isinstance(node, Neg | Transpose):
        return _degree(node.operand)
    return 1


def _only_numbers(node: Node) -> bool:
    """Whether a subtree holds numbers only (so SymPy would evaluate it eagerly)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Name | Call | Transpose):
            return False
        if isinstance(current, BinOp):
            stack += [current.left, current.right]
        elif isinstance(current, Neg):
            stack.append(current.operand)
    return True


def _numeric(node: Node) -> sympy.Rational | None:
    """The value of a subtree made of numbers and + - * / only (no powers), else None."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Neg):
        inner = _numeric(node.operand)
        return None if inner is None else -inner
    if isinstance(node, BinOp) and node.op in "+-*/" and len(node.op) == 1:
        left, right = _numeric(node.left), _numeric(node.right)
        if left is None or right is None or (node.op == "/" and right == 0):
            return None
        return ARITHMETIC[node.op](left, right)
    return None


ARITHMETIC: dict[str, Callable[[sympy.Expr, sympy.Expr], sympy.Expr]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "**": lambda a, b: a**b,
}


def walk(node: Node) -> Iterator[Node]:
    """Every node of a tree, parents before children."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, BinOp):
            stack += [current.right, current.left]
        elif isinstance(current, Neg | Transpose):
            stack.append(current.operand)
        elif isinstance(current, Call):
            stack += list(reversed(current.args))


def names_in(node: Node) -> list[str]:
    """Value names in first-appearance order (function names of calls excluded)."""
    found: dict[str, None] = {}
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Name):
            found.setdefault(current.id)
        elif isinstance(current, BinOp):
            stack += [current.right, current.left]
        elif isinstance(current, Neg | Transpose):
            stack.append(current.operand)
        elif isinstance(current, Call):
            stack += list(reversed(current.args))
    return list(found)


def _in_range(number: sympy.Rational) -> bool:
    """Whether a rational prints as a float64: numerator and denominator within 10^300."""
    return abs(number.p) <= MAX_NUMBER and number.q <= MAX_NUMBER


_NOT_REAL = (sympy.I, sympy.zoo, sympy.oo, sympy.S.NegativeInfinity, sympy.nan)


def check_real(expr: sympy.Expr) -> None:
    """Raise ParseError unless every constant in ``expr`` is a finite real float64.

    SymPy folds constants as it builds: ``log(0)`` is complex infinity, ``sqrt(-1)`` is i,
    ``1e200 * 1e200`` is an integer no float can hold, and ``exp(1000)`` overflows when the
    module computes it. Number-valued subexpressions are evaluated innermost first, so a
    tower such as ``exp(exp(exp(100)))`` stops at its first out-of-range level.
    """
    if expr.has(*_NOT_REAL):
        raise ParseError("a constant is not a finite real number (as log(0) or sqrt(-1) are not)")
    for node in sympy.postorder_traversal(expr):
        if isinstance(node, sympy.Pow) and _negative_base(node):
            raise ParseError(
                f"{node} is not real: a negative number to a power that may not be an integer"
            )
        if isinstance(node, sympy.Rational):
            if not _in_range(node):
                raise ParseError("a constant is outside the range of a float (1e±300)")
        elif isinstance(node, sympy.Expr) and node.is_number and not node.is_Atom:
            value = sympy.N(node, 17)
            if value.is_Number:
                if not value.is_finite or (value != 0 and not 1e-300 <= abs(value) <= 1e300):
                    raise ParseError(
                        f"the constant {node} is outside the range of a float (1e±300)"
                    )
            elif value.has(sympy.I) or value.is_real is False:
                raise ParseError(f"the constant {node} is not a real number")


def _negative_base(power: sympy.Pow) -> bool:
    base, exponent = power.args
    return bool(base.is_number and base.is_negative and not exponent.is_integer)


def to_sympy(
    node: Node,
    names: Mapping[str, sympy.Expr],
    functions: Mapping[str, Callable[[sympy.Expr], sympy.Expr]],
) -> sympy.Expr:
    """A scalar expression tree as SymPy (for ``[functions]`` bodies): no @, .T or axis.

    Every constant of the result is a finite real float64 (:func:`check_real`), and every
    power's exponent is within ±MAX_EXPONENT (``z**40 * z**40`` is ``z**80``).
    """
    expr = _to_sympy(node, names, functions)
    check_real(expr)
    for power in expr.atoms(sympy.Pow):
        if power.exp.is_Number and abs(power.exp) > MAX_EXPONENT:
            raise ParseError(
                f"exponents are limited to ±{MAX_EXPONENT}, also after SymPy combines powers "
                f"(here {power})"
            )
    return expr


def _to_sympy(
    node: Node,
    names: Mapping[str, sympy.Expr],
    functions: Mapping[str, Callable[[sympy.Expr], sympy.Expr]],
) -> sympy.Expr:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Name):
        if node.id not in names:
            raise ParseError(f"unknown name '{node.id}'; known: {', '.join(sorted(names))}")
        return names[node.id]
    if isinstance(node, Neg):
        return -_to_sympy(node.operand, names, functions)
    if isinstance(node, Transpose):
        raise ParseError("`.T` is not allowed in a scalar expression")
    if isinstance(node, BinOp):
        if node.op == "@":
            raise ParseError("`@` is not allowed in a scalar expression")
        a = _to_sympy(node.left, names, functions)
        b = _to_sympy(node.right, names, functions)
        if node.op == "/" and b == 0:
            raise ParseError("division by zero")
        return ARITHMETIC[node.op](a, b)
    if isinstance(node, Call):
        if node.axis is not None:
            raise ParseError("axis= is not allowed in a scalar expression")
        if node.func not in functions:
            raise ParseError(
                f"unknown function '{node.func}'; known: {', '.join(sorted(functions))}"
            )
        function = functions[node.func]
        arity = getattr(function, "arity", 1)
        if len(node.args) != arity:
            takes = "one argument" if arity == 1 else f"{arity} arguments"
            raise ParseError(f"{node.func} takes {takes}, got {len(node.args)}")
        return function(*(_to_sympy(a, names, functions) for a in node.args))
    raise ParseError(f"unsupported expression {node!r}")
