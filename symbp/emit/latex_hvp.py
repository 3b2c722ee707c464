"""The LaTeX document's Hessian-vector product section (``symbp latex --hvp``).

The section derives H·V as symbp computes it, seed 000's Corollary 1: the inner product
g = Σ_p ⟨∇_p L, V_p⟩ appended to the gradient Program, then reverse mode once more. It is a
section builder (:data:`symbp.emit.latex_writer.SectionBuilder`): every displayed line is a
verified :class:`~symbp.ir.display.Line`. A step of the second pass defines its value; where
that value is the tangent Ẋ of a forward value, the line also states Ẋ = ∂_V X, and the
blocks of H·V are stated equal to (H V)_p: the line verifier evaluates both from its own
forward sweep over its own adjoints (:meth:`symbp.analysis.lines.Scene.tangent`), so the
section's claims are checked against a second derivation that shares no code with this one.
"""

from __future__ import annotations

import re

import sympy

from symbp.ad.hvp import HVP
from symbp.emit.latex import inlined
from symbp.emit.latex_lines import equation
from symbp.emit.latex_names import escape_text, split_superscript
from symbp.emit.latex_writer import Section, Writer
from symbp.emit.printing import LatexPrinters
from symbp.ir import display as d
from symbp.ir.display import Line
from symbp.ir.ops import OPS
from symbp.ir.program import Eqn, Program

_HEAD = re.compile(r"(\\[A-Za-z]+(?:\{[^{}]*\})?|\{[^{}]*\}|.)(.*)", re.S)


def _accent(accent: str, tex: str) -> str:
    """``\\dot{W}_{1}`` from ``W_{1}``: the accent over the name's head, not its index."""
    tex = tex.strip()
    if tex.startswith(r"\bar{"):  # an adjoint's name: the accent takes the bar's place
        return accent + tex[len(r"\bar") :]
    if tex.startswith(r"{\bar{"):
        return "{" + accent + tex[len(r"{\bar") :]
    head, rest = _HEAD.fullmatch(tex).groups()  # type: ignore[union-attr]
    if "^" in rest:  # Wᵀ: the accent over the whole (a superscript follows it in a share)
        return f"{accent}{{{tex}}}"
    return f"{accent}{{{head}}}{rest}"


def _with_share(tex: str, child: str) -> str:
    """The share of the value named ``tex`` through ``child``: ``{x}^{(child)}``, or
    ``{x}^{(A)(child)}`` where the name has a superscript already (TeX refuses a second)."""
    split = split_superscript(tex)
    if split is None:
        return "{" + tex + "}^{(" + child + ")}"
    base, superscript = split
    return base + "^{" + superscript + "(" + child + ")}"


def hvp_names(second: HVP, first: dict[str, str]) -> dict[str, str]:
    """The LaTeX of every value of the HVP Program the document names, from the first
    pass's names ``first``: V_p for p's direction; Ẋ for the second pass's adjoint of the
    first pass's X̄ (the tangent of X along V); X̂ = ∂g/∂X for any other value X; a share of
    one through a child, or a rule's own temporary, as that value with the child (or the
    temporary's part) as a superscript."""
    program = second.program
    names = dict(first)
    names[program.loss] = "g"
    for param, v in second.directions.items():
        names[v] = "V_{" + first[param] + "}"
    second_values = [e.out for e in second.second_eqns]

    def name_of(value: str) -> str:
        if value in names:
            return names[value]
        accent = {"t": r"\dot", "h": r"\hat"}.get(value[:1])
        rest = value[1:]
        original = ("d" + rest) if value[:1] == "t" else rest
        if accent and value[:1] == "t" and rest in first and not rest.startswith("d"):
            return _accent(accent, first[rest])  # the tangent of a forward value
        if accent and original in first:
            return _accent(accent, first[original])
        for stem in sorted((s for s in second_values if value.startswith(s + "_")), key=len)[::-1]:
            part = value[len(stem) + 1 :]
            inner = name_of(part) if part in program.vars else rf"\text{{{escape_text(part)}}}"
            return _with_share(name_of(stem), inner)
        return rf"\mathrm{{{escape_text(value)}}}"

    for value in program.vars:
        names[value] = name_of(value)
    return names


def _printers(w: Writer, second: HVP) -> LatexPrinters:
    program = second.program
    base = w.pr.latex_printer
    names = hvp_names(second, w.notation.names)
    ranks = program.ranks()
    adjoints = set(w.notation.adjoints) | {e.out for e in second.second_eqns}
    return LatexPrinters(
        w.derivation.functions, names, ranks, base.bar_names, base.symbols, adjoints
    )


def _inlined(w: Writer, second: HVP) -> dict[sympy.Symbol, sympy.Expr]:
    """The values the code shares (1 − A² computed once) and the first pass's temporaries
    (a softmax) as their expressions: the document writes them out where they are used, as
    the mathematics has them."""
    producer = second.program.producer()
    out = inlined(w)
    for name in second.shared:
        out[sympy.Symbol(name)] = producer[name].attr("expr").xreplace(out)
    return out


def _display(eqn: Eqn, program: Program, ranks: dict[str, int], inline: dict) -> sympy.Expr:
    shapes = [program.shape(a) for a in eqn.args]
    expr = OPS[eqn.op].display(list(eqn.args), dict(eqn.attrs), shapes).xreplace(inline)
    shape = program.shape(eqn.out)
    if len(shape) == 2 and shape[1] == 1 and d.rank(expr, ranks) == 1:
        return d.Column(expr)  # a row's sum kept as a column, to broadcast along the row
    return expr


INTRO = (
    "Seed 000's Corollary 1: for a direction $V$ (one block $V_{{p}}$ per parameter, shaped "
    r"like it), $g(\theta) = \langle \nabla {loss}(\theta), V \rangle$ is computed by the "
    "gradient program above and one inner product per parameter, a circuit of size "
    r"$O(N + l)$. Theorem 1 applied to $g$ once more gives "
    r"$\nabla g = \nabla^{{2}} {loss}(\theta)\, V$, the Hessian-vector product $H V$, at a "
    "cost of $O(N + l)$. symbp does exactly that: it appends $g$ to the gradient program "
    "and runs the same reverse walk, with the same rules, over the whole of it."
)
NAMES = (
    r"In the second pass, the adjoint of a first-pass adjoint $\bar{X}$ is written "
    r"$\dot{X}$: it is the tangent of $X$ along $V$, "
    r"$\dot{X} = \partial_{V} X = \frac{d}{d\varepsilon} X(\theta + \varepsilon V)"
    r"\big|_{\varepsilon = 0}$, since the backward pass is linear in its adjoints. The "
    r"adjoint of any other value $X$ is written $\hat{X} = \partial g / \partial X$; for a "
    "parameter, it is that parameter's block of $H V$. The second pass thus computes the "
    "tangents of the forward values and the tangents of their adjoints, which is what "
    r"forward-over-reverse (Pearlmutter's $\mathcal{R}$-operator) computes: both give the "
    "same $H V$ with the same operations (symbp takes reverse-over-reverse, the seed's "
    "construction, which needs no rule beyond each operation's vector-Jacobian product). "
    "ReLU's second derivative is taken as 0, as it is almost everywhere; the fused losses "
    "differentiate their exact gradients (softmax cross-entropy's Jacobian "
    r"$\operatorname{diag}(s) - s s^{\top}$, row by row)."
)


def hvp_section(w: Writer) -> Section:
    """The section: the inner product, the first-pass values the second pass reads, the
    second pass one verified assignment a line, and H·V block by block."""
    derivation = w.derivation
    second = derivation.hvp
    program = second.program
    pr = _printers(w, second)
    inline = _inlined(w, second)
    loss = pr.latex(sympy.Symbol(derivation.program.loss))
    section = Section("The Hessian-vector product")
    section.text(INTRO.format(loss=loss))
    section.text(NAMES)

    g = sympy.Symbol(program.loss)
    terms = [
        d.Inner(d.Deriv(sympy.Symbol(derivation.program.loss), sympy.Symbol(p)), sympy.Symbol(v))
        for p, v in second.directions.items()
    ]
    inner = d.plus(*terms)
    section.text(r"\noindent The inner product, appended to the gradient program:")
    section.show([equation(pr, [g, inner], defines=((g, inner),))], numbered=False)

    position = {e.out: i for i, e in enumerate(program.eqns)}
    live = [e for e in second.eqns_for(second.hv.values()) if e.out not in second.shared]
    n_inner = program.n_forward or len(program.eqns)
    first = {e.out for e in live if position[e.out] < n_inner}
    steps = [e for e in live if position[e.out] >= n_inner]
    ranks = program.ranks()
    shown_as = {e.out: _display(e, program, ranks, inline) for e in steps}
    read: set[str] = set()
    for rhs in shown_as.values():
        read |= {s.name for s in rhs.free_symbols} & first
    if read:
        shown = ", ".join(
            f"${pr.latex(sympy.Symbol(n))}$" for n in sorted(read, key=position.__getitem__)
        )
        section.text(
            f"The second pass reads these values of the forward and backward passes: {shown}."
        )
    forward = {e.out for e in derivation.program.forward_eqns}
    known = [*derivation.program.vars, *second.directions.values()]  # values the scene has
    cotangents = {e.out for e in derivation.program.backward_eqns}
    lines: list[Line] = []
    for e in steps:
        out = sympy.Symbol(e.out)
        rhs = shown_as[e.out]
        sides: list[sympy.Basic] = [out]
        shape = program.shape(e.out)
        of = e.out[1:]  # tX, the second pass's adjoint of X̄, is X's tangent
        if e.out.startswith("t") and of in forward and "d" + of in cotangents:
            sides.append(d.Tangent(sympy.Symbol(of)))
            shape = program.shape(of)  # the code may keep a tangent that is constant smaller
        value = rhs
        if shape != program.shape(e.out) or d.rank(rhs, ranks) < len(shape):
            # spread over every entry (a fill, a tangent the code keeps before a broadcast)
            like = next((n for n in (*e.args, *known) if program.shape(n) == shape), None)
            if like is not None:
                value = d.Times(rhs, d.OnesLike(sympy.Symbol(like)))
        sides.append(rhs if rhs.is_Number else value)
        lines.append(equation(pr, sides, defines=((out, value),)))
    section.text(
        r"Backprop of $g$, seeded with $\bar{g} = 1$, one assignment per line in the order "
        r"computed (where a value is a tangent, the line also states it as $\partial_{V}$ of "
        "its forward value):"
    )
    section.show(lines)
    results = []
    for p, h in second.hv.items():
        lhs = pr.latex(d.HessVec(sympy.Symbol(p)))
        lhs += rf" = \frac{{\partial g}}{{\partial {pr.latex(sympy.Symbol(p))}}}"
        results.append(equation(pr, [d.HessVec(sympy.Symbol(p)), sympy.Symbol(h)], lhs=lhs))
    section.text("The Hessian-vector product, block by block:")
    section.show(results, numbered=False)
    return section
