"""Displayed equations: a :class:`~symbp.ir.display.Line` from its sides, laid out in rows.

Every side is printed from its SymPy expression, so what the reader sees is what the line
verifier evaluates. A side too wide for the page is broken where a lecturer would break it:
between the terms of a sum, then between the factors of a product, then inside a function's
argument or a bracket (``\\Bigl(`` … ``\\Bigr)``, which may open and close on different rows).
Widths are estimated from the LaTeX, in glyphs; the tests compile every document and find no
overfull line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import sympy

from symbp.emit.printing import LatexPrinters
from symbp.ir import display
from symbp.ir.display import Line

ROW = 62.0
"""Glyphs a displayed row holds beside its left-hand side and equation number (11pt, 16 cm)."""

_COMMAND_WIDTH = {
    r"\left": 0,
    r"\right": 0,
    r"\bigl": 0,
    r"\bigr": 0,
    r"\Bigl": 0,
    r"\Bigr": 0,
    r"\biggl": 0,
    r"\biggr": 0,
    r"\odot": 2.2,
    r"\cdot": 1.5,
    r"\quad": 2,
    r"\qquad": 4,
    r"\,": 0.3,
    r"\;": 0.4,
    r"\!": -0.2,
    r"\top": 0.8,
    r"\circ": 0.6,
    r"\sum": 1.6,
    r"\partial": 1,
    r"\lVert": 0.6,
    r"\rVert": 0.6,
    r"\nabla": 1.2,
    r"\nonumber": 0,
    r"\log": 2,
    r"\exp": 2.4,
    r"\tanh": 3.2,
    r"\max": 2.6,
    r"\min": 2.4,
    r"\sin": 2,
    r"\cos": 2.2,
}
_WIDE_BINARY = "+-=<>"
_GROUPS = (
    r"\operatorname",
    r"\mathrm",
    r"\text",
    r"\mathbf",
    r"\boldsymbol",
    r"\bar",
    r"\overline",
    r"\mathcal",
)


def _group(tex: str, start: int) -> tuple[str, int]:
    """The brace group (or single token) starting at ``start``, and the index after it."""
    while start < len(tex) and tex[start] == " ":
        start += 1
    if start >= len(tex):
        return "", start
    if tex[start] != "{":
        if tex[start] == "\\":
            match = re.match(r"\\[A-Za-z]+|\\.", tex[start:])
            assert match is not None
            return match.group(0), start + len(match.group(0))
        return tex[start], start + 1
    depth = 0
    for i in range(start, len(tex)):
        if tex[i] == "{" and (i == 0 or tex[i - 1] != "\\"):
            depth += 1
        elif tex[i] == "}" and tex[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return tex[start + 1 : i], i + 1
    return tex[start + 1 :], len(tex)


def width(tex: str) -> float:
    """An estimate of how many glyph widths ``tex`` takes in a display."""
    total, i = 0.0, 0
    while i < len(tex):
        c = tex[i]
        if c == "\\":
            match = re.match(r"\\[A-Za-z]+|\\.", tex[i:])
            assert match is not None
            command = match.group(0)
            i += len(command)
            if command == r"\frac" or command == r"\tfrac":
                top, i = _group(tex, i)
                bottom, i = _group(tex, i)
                total += max(width(top), width(bottom)) * (0.75 if command == r"\tfrac" else 1)
                total += 0.4
            elif command in (r"\underbrace", r"\overbrace"):
                body, i = _group(tex, i)
                total += width(body)
            elif command in _GROUPS:
                body, i = _group(tex, i)
                plain = command in (r"\operatorname", r"\mathrm", r"\text")
                total += len(body) * 0.9 if plain else width(body)
            elif command in (r"\left", r"\right", r"\bigl", r"\bigr", r"\Bigl", r"\Bigr"):
                _, i = _group(tex, i)
                total += 0.8
            else:
                total += _COMMAND_WIDTH.get(command, 1.0)
        elif c in "_^":
            body, i = _group(tex, i + 1)
            total += 0.7 * width(body)
        elif c in "{} &":
            i += 1
        elif c in _WIDE_BINARY:
            total += 2.0
            i += 1
        else:
            total += 1.0
            i += 1
    return total


# ---- breaking -------------------------------------------------------------------------------


def _tokens(pr: LatexPrinters, expr: sympy.Basic, budget: float) -> list[str]:
    """``expr`` as pieces whose concatenation is its LaTeX, with a break allowed between any
    two; one piece where it fits in ``budget``."""
    whole = pr.latex(expr)
    if width(whole) <= budget:
        return [whole]
    printer = pr.latex_printer
    if isinstance(expr, sympy.Add):
        out: list[str] = []
        for k, term in enumerate(printer._as_ordered_terms(expr)):
            negative = term.could_extract_minus_sign()
            pieces = _tokens(pr, -term if negative else term, budget)
            if negative:
                pieces[0] = "- " + pieces[0]
            elif k:
                pieces[0] = "+ " + pieces[0]
            out += pieces
        return out
    if isinstance(expr, sympy.Piecewise):  # each branch's value in rows of its own
        branches = []
        for value, condition in expr.args:
            when = (
                r"\text{otherwise}"
                if condition is sympy.true
                else rf"\text{{for}}\: {printer._print(condition)}"
            )
            parts = rows(pr, value, max(budget - width(when) - 2, ROW / 3))
            if len(parts) > 1:
                parts = [r"\begin{aligned}[t] &" + r" \\ &\quad ".join(parts) + r"\end{aligned}"]
            branches.append(f"{parts[0]} & {when}")
        return [r"\begin{cases} " + r" \\".join(branches) + r" \end{cases}"]
    if isinstance(expr, display.Plus):  # a sum kept in its order: break between its terms
        out = []
        for k, term in enumerate(expr.args):
            negative = bool(k) and term.could_extract_minus_sign()
            shown = -term if negative else term
            pieces = _tokens(pr, shown, budget)
            if k and isinstance(shown, sympy.Add | display.Plus):  # as _print_Plus brackets it
                pieces[0], pieces[-1] = r"\left(" + pieces[0], pieces[-1] + r"\right)"
            if k:
                pieces[0] = ("- " if negative else "+ ") + pieces[0]
            out += pieces
        return out
    if isinstance(expr, sympy.Mul) and not any(f.is_Pow and f.exp.is_negative for f in expr.args):
        if expr.could_extract_minus_sign():
            pieces = _tokens(pr, -expr, budget)
            pieces[0] = "- " + pieces[0]
            return pieces
        factors = expr.as_ordered_factors()
        arrays = [f for f in factors if printer._is_array(f)]
        glue = r"\odot " if len(arrays) > 1 else ""
        out = []
        for k, factor in enumerate([f for f in factors if f not in arrays] + arrays):
            pieces = _tokens(pr, factor, budget)
            if isinstance(factor, sympy.Add) and len(pieces) == 1:
                pieces = [rf"\left({pieces[0]}\right)"]
            elif isinstance(factor, sympy.Add):
                pieces[0], pieces[-1] = r"\Bigl(" + pieces[0], pieces[-1] + r"\Bigr)"
            if k and factor in arrays and glue and arrays.index(factor):
                pieces[0] = glue + pieces[0]
            out += pieces
        return out
    inner = _argument(pr, expr)
    if inner is not None:
        head, argument, tail = inner
        pieces = _tokens(pr, argument, budget)
        pieces[0] = head + r"\Bigl(" + pieces[0]
        pieces[-1] = pieces[-1] + r"\Bigr)" + tail
        return pieces
    return [whole]


def _argument(pr: LatexPrinters, expr: sympy.Basic) -> tuple[str, sympy.Basic, str] | None:
    """A call or a power to break inside: (what comes before the bracket, the argument, what
    comes after it), or None."""
    if isinstance(expr, sympy.Pow) and expr.exp.is_Integer and expr.exp > 0:
        circle = r"\circ " if pr.latex_printer._rank(expr.base) else ""
        return "", expr.base, f"^{{{circle}{expr.exp}}}"
    if isinstance(expr, display.Mark):
        return "", expr.args[0], ""
    if len(expr.args) != 1 or not isinstance(expr, sympy.Function):
        return None
    if isinstance(expr, display.FPrime | display.FView):
        entry = pr.functions[type(expr).name]
        prime = "'" if isinstance(expr, display.FPrime) else ""
    elif isinstance(expr, display.Node):
        return None
    else:
        entry = pr.functions.by_class(type(expr))
        prime = ""
    if entry is None or not entry.latex or "{x}" in entry.latex:
        return None
    return entry.latex + prime, expr.args[0], ""


def rows(pr: LatexPrinters, expr: sympy.Basic, budget: float = ROW) -> list[str]:
    """``expr`` printed in rows of at most ``budget`` glyphs (estimated), filled greedily."""
    out: list[str] = []
    current = ""
    for piece in _tokens(pr, expr, budget):
        if current and width(current + " " + piece) > budget:
            out.append(current)
            current = piece
        else:
            current = f"{current} {piece}" if current else piece
    out.append(current)
    return out


def equation(
    pr: LatexPrinters,
    sides: Sequence[sympy.Basic],
    *,
    lhs: str | None = None,
    note: str = "",
    tail: str = "",
    **line: object,
) -> Line:
    """The Line stating ``sides`` equal: the first on the left, each other side on a row of
    its own (``&= …``), broken into more rows where it is too wide. ``lhs`` prints the left
    side another way (its value is still the first side's); ``note`` (text) follows the last
    row, ``tail`` (math) ends it in a column of its own (``&& m \\times 5``)."""
    left = lhs if lhs is not None else pr.latex(sides[0])
    budget = max(ROW - width(left) - width(tail), ROW / 2)
    texts: list[str] = []
    for k, side in enumerate(sides[1:]):
        parts = rows(pr, side, budget)
        first = f"{left} &= {parts[0]}" if k == 0 else f"&= {parts[0]}"
        texts += [first, *(rf"&\quad {p}" for p in parts[1:])]
    if len(sides) == 1:
        texts = [left]
    if note:
        texts[-1] += rf" \quad \text{{{note}}}"
    if tail:
        texts[-1] += f" && {tail}"
    tex = " \\nonumber \\\\\n".join(texts)
    return Line(tex=tex, sides=tuple(sides), **line)  # type: ignore[arg-type]


def joined(lines: Iterable[Line]) -> str:
    """Lines as the rows of one ``align``: each its own equation."""
    return " \\\\\n".join(line.tex for line in lines)
