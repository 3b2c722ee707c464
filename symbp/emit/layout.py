"""Python source laid out as ``ruff format`` lays it out, so that generated modules need no
formatter pass: a construct stays on one line where it fits, and is otherwise exploded one
item a line with a trailing comma (which ruff keeps as it is: its "magic trailing comma").
An expression too long for a line is split into temporaries."""

from __future__ import annotations

from collections.abc import Callable

import sympy
from sympy.functions.elementary.piecewise import ExprCondPair

LINE_WIDTH = 99
"""The generated module's line length, as the project's ruff settings have it."""


def bracketed(
    opening: str, items: list[str], closing: str, indent: int = 4, one_line: str | None = None
) -> list[str]:
    """``opening items closing`` (or ``one_line``) if it fits, else one item a line."""
    line = opening + ", ".join(items) + closing if one_line is None else one_line
    if indent + len(line) <= LINE_WIDTH:
        return [line]
    return [opening, *(f"    {item}," for item in items), closing]


def unpack(names: list[str], value: str, indent: int = 4) -> list[str]:
    """``a, b, c = value``."""
    if len(names) == 1:
        return [f"({names[0]},) = {value}"]
    return bracketed("(", names, f") = {value}", indent, f"{', '.join(names)} = {value}")


def delete(names: list[str], indent: int = 4) -> list[str]:
    """``del a, b``."""
    return bracketed("del (", names, ")", indent, "del " + ", ".join(names))


def too_long(lines: list[str], indent: int = 4) -> bool:
    return any(indent + len(line) > LINE_WIDTH for line in lines)


def short_statements(
    out: str, expr: sympy.Basic, print_code: Callable[[sympy.Basic], str]
) -> list[str]:
    """``out = expr`` in lines that fit: the largest parts that fit a line of their own are
    computed first, into temporaries ``_out_1``, ``_out_2``, … (no spec name starts with _)."""
    lines: list[str] = []
    while 4 + len(f"{out} = {print_code(expr)}") > LINE_WIDTH:
        name = f"_{out}_{len(lines) + 1}"
        found = _split_off(expr, lambda e, n=name: 4 + len(f"{n} = {print_code(e)}"))
        if found is None:
            break
        part, node, replacement = found
        lines.append(f"{name} = {print_code(part)}")
        expr = expr.xreplace({node: replacement.xreplace({part: sympy.Symbol(name)})})
    return [*lines, f"{out} = {print_code(expr)}"]


def _split_off(expr: sympy.Basic, width) -> tuple[sympy.Basic, sympy.Basic, sympy.Basic] | None:
    """A part of ``expr`` whose line fits, the node it is taken from and that node rewritten
    around it: the first operand that fits, down the widest ones, or else the longest run of
    a wide sum's or product's operands."""
    node = expr
    while True:
        parts = [
            p
            for a in node.args
            for p in (a.args if isinstance(a, ExprCondPair) else (a,))
            if not p.is_Atom
        ]
        widest = max(parts, key=width, default=None)
        if widest is not None and width(widest) <= LINE_WIDTH:
            return widest, widest, widest
        if widest is not None and not isinstance(node, sympy.Add | sympy.Mul):
            node = widest
            continue
        if isinstance(node, sympy.Add | sympy.Mul) and len(node.args) > 2:
            for k in range(len(node.args) - 1, 1, -1):
                run = node.func(*node.args[:k])
                if width(run) <= LINE_WIDTH:
                    return run, node, node.func(run, *node.args[k:], evaluate=False)
        if widest is None:
            return None
        node = widest
