"""The LaTeX document's Hessian-vector product section (``symbp latex --hvp``).

The section derives H·V as symbp computes it, seed 000's Corollary 1: the inner product
g = Σ_p ⟨∇_p L, V_p⟩ appended to the gradient Program, then reverse mode once more. Every
displayed line is one assignment of the HVP Program, ``lhs = rhs``, and keeps its two sides
as SymPy (``lhs``: the value's symbol; ``rhs``: the ``ewise`` expression, or the op applied to
its arguments, with the :class:`~symbp.ir.program.Eqn` whose ``scalar`` rule evaluates it), so
that a line verifier can evaluate both at small concrete shapes.
"""

from __future__ import annotations

from typing import Any

import sympy

from symbp.ad.hvp import HVP
from symbp.derivation import Derivation
from symbp.emit.latex_names import atom, backward_latex_name, latex_name
from symbp.emit.printing import LatexPrinters, Printers
from symbp.ir.ops import OPS
from symbp.ir.program import Eqn


def hvp_latex_name(name: str, second: HVP) -> str:
    """Names of the HVP Program: ``V_W1`` → V_{W_1}; ``tZ1`` → Ż₁ (the tangent, the second
    pass's adjoint of Z̄₁); ``hZ1`` → Ẑ₁ (∂g/∂Z₁); a contribution gets its child as a
    superscript, as in the backward pass; anything else as the backward pass names it."""
    gradient_vars = {e.out for e in second.program.eqns[: second.n_gradient]}
    gradient_vars |= set(second.program.params) | set(second.program.inputs)
    for param, direction in second.directions.items():
        if name == direction:
            return "V_{" + latex_name(param) + "}"
    program = second.program
    if name[:1] in ("t", "h") and name not in gradient_vars:
        accent = r"\dot" if name[0] == "t" else r"\hat"
        base = ("d" if name[0] == "t" else "") + name[1:]
        if base in gradient_vars:
            return _accented(accent, base, program)
        for child in sorted(program.vars, key=len, reverse=True):
            stem = base[: -len(child) - 1]
            if base.endswith("_" + child) and stem in gradient_vars:
                inner = hvp_latex_name(child, second) if child not in gradient_vars else None
                inner = inner or backward_latex_name(child, program)
                return _accented(accent, stem, program) + "^{(" + inner + ")}"
        stem, _, part = base.rpartition("_")
        if stem in gradient_vars and part.isalpha():  # a rule's own temporary (a row sum)
            return _accented(accent, stem, program) + r"^{(\text{" + part + "})}"
    return backward_latex_name(name, program)


def _accented(accent: str, name: str, program) -> str:
    """``\\dot{Z}_{1}`` for the value ``dZ1`` (its tangent), ``\\hat{Z}_{1}`` for ``Z1``."""
    tex = backward_latex_name(name, program)
    if name.startswith("d") and tex.startswith(r"\bar{"):
        tex = tex[len(r"\bar{") :].replace("}", "", 1)
        head, _, rest = tex.partition("_")
        return f"{accent}{{{head}}}" + ("_" + rest if rest else "")
    head, sep, rest = tex.partition("_")
    return f"{accent}{{{head}}}{sep}{rest}"


def printers_for_hvp(derivation: Derivation) -> Printers:
    second = derivation.hvp
    names = {n: atom(hvp_latex_name(n, second)) for n in second.program.vars}
    arrays = frozenset(n for n, v in second.program.vars.items() if v.shape)
    return LatexPrinters(derivation.functions, names, arrays)


def _written_out(second: HVP) -> dict[sympy.Symbol, sympy.Expr]:
    """The values the code shares (1 − A² computed once) as their expressions: the document
    writes them out where they are used, as the mathematics has them."""
    producer = second.program.producer()
    out: dict[sympy.Symbol, sympy.Expr] = {}
    for name in second.shared:
        out[sympy.Symbol(name)] = producer[name].attr("expr").xreplace(out)
    return out


def _line(eqn: Eqn, pr: Printers, second: HVP, inline: dict) -> dict[str, Any]:
    """One displayed assignment, with its two sides as SymPy."""
    if eqn.op == "ewise":
        rhs = eqn.attr("expr").xreplace(inline)
        tex = pr.latex(rhs)
    else:
        tex = OPS[eqn.op].latex(list(eqn.args), {**dict(eqn.attrs), "names": eqn.args}, pr)
        rhs = sympy.Function(eqn.op)(*(sympy.Symbol(a) for a in eqn.args))
    return {
        "lhs_tex": hvp_latex_name(eqn.out, second),
        "rhs_tex": tex,
        "lhs": sympy.Symbol(eqn.out),
        "rhs": rhs,
        "eqn": eqn,
        "shape": second.program.shape(eqn.out),
    }


def hvp_section(derivation: Derivation) -> dict[str, Any]:
    """The section's context: its paragraphs (escaped), the inner product, the first-pass
    values the second pass reads, the second pass one assignment a line, and H·V by block."""
    second = derivation.hvp
    program = second.program
    pr = printers_for_hvp(derivation)
    inline = _written_out(second)
    position = {e.out: i for i, e in enumerate(program.eqns)}
    live = [e for e in second.eqns_for(second.hv.values()) if e.out not in second.shared]
    n_inner = program.n_forward or len(program.eqns)
    first = [e for e in live if position[e.out] < n_inner]
    steps = [_line(e, pr, second, inline) for e in live if position[e.out] >= n_inner]
    first_names = {e.out for e in first}
    read: set[str] = set()
    for e in live:
        expr = e.attr("expr").xreplace(inline) if e.op == "ewise" else None
        names = {s.name for s in expr.free_symbols} if expr is not None else set(e.reads)
        read |= names & first_names
    loss = latex_name(second.loss)
    inner_terms = " + ".join(
        rf"\left\langle \frac{{\partial {loss}}}{{\partial {latex_name(p)}}}, "
        rf"{hvp_latex_name(v, second)} \right\rangle"
        for p, v in second.directions.items()
    )
    gradient_read = sorted(read, key=position.__getitem__)
    return {
        "intro": [
            "Seed 000's Corollary 1: for a direction $V$ (one block $V_{p}$ per parameter, "
            r"shaped like it), $g(\theta) = \langle \nabla L(\theta), V \rangle$ is computed "
            "by the gradient program above and one inner product per parameter, a circuit of "
            "size $O(N + l)$. Theorem 1 applied to $g$ once more gives "
            r"$\nabla g = \nabla^{2} L(\theta)\, V$, the Hessian-vector product $H V$, at a "
            "cost of $O(N + l)$. symbp does exactly that: it appends $g$ to the gradient "
            "program and runs the same reverse walk, with the same rules, over the whole of it.",
            r"In the second pass, the adjoint of a first-pass adjoint $\bar{X}$ is written "
            r"$\dot{X}$: it is the tangent of $X$ along $V$, "
            r"$\dot{X} = \frac{\partial X}{\partial \theta} V$, since the backward pass is "
            r"linear in its adjoints. The adjoint of any other value $X$ is written "
            r"$\hat{X} = \partial g / \partial X$; for a parameter, it is that parameter's "
            "block of $H V$. The second pass thus computes the tangents of the forward values "
            "and the tangents of their adjoints, which is what forward-over-reverse "
            r"(Pearlmutter's $\mathcal{R}$-operator) computes: both give the same $H V$ with "
            "the same operations (symbp takes reverse-over-reverse, the seed's construction, "
            "which needs no rule beyond each operation's vector-Jacobian product). ReLU's "
            "second derivative is taken as 0, as it is almost everywhere; the fused losses "
            "differentiate their exact gradients (softmax cross-entropy's Jacobian "
            r"$\operatorname{diag}(s) - s s^{\top}$, row by row).",
        ],
        "inner": rf"g &= {inner_terms}",
        "reads": [{"lhs_tex": backward_latex_name(a, program), "name": a} for a in gradient_read],
        "steps": steps,
        "results": [(latex_name(p), hvp_latex_name(h, second)) for p, h in second.hv.items()],
        "loss": loss,
    }
