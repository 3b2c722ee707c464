"""Second order: the Hessian-vector product H·V as a Program, by seed 000's Corollary 1.

The gradient Program computes ∇L(θ) with a circuit of size O(N). Appending the inner product
g(θ) = Σ_p ⟨∇_p L(θ), V_p⟩ makes a circuit of size O(N + l) for a scalar, and reverse mode
applied to it once more (Theorem 1 again) gives ∇g = ∇²L(θ)·V at a cost of O(N + l). The
walk and the rules are :func:`backprop`'s own: the second pass meets the ops the first pass
made (outer products, softmax, fills, broadcasts, sums with ``keepdims``, ``ewise`` with
``Piecewise``), and their records hold their VJPs like any other op's.

Reverse-over-reverse and forward-over-reverse (Pearlmutter's R-operator) compute the same
values here: the second pass's adjoint of a first-pass cotangent X̄ is the tangent Ẋ = (∂X/∂θ)·V
(the first pass is linear in its cotangents), so the second pass is the forward tangent sweep
of the R-operator run backwards through the same assignments, and what it computes for the
parameters is H·V either way. Value numbering and the dead-code pass leave one assignment per
tangent and per second-order adjoint, as the R-operator has.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

import sympy

from symbp.ad.backprop import backprop
from symbp.ir.builder import Builder
from symbp.ir.names import BUILTINS, GENERATED, direction, helper_names, second_adjoint
from symbp.ir.program import Eqn, Program, Var, broadcast_shapes, with_eqns

ARGUMENT = "V"
"""The direction's name as an argument of ``hvp`` (a dict keyed like the parameters)."""


@dataclass
class HVP:
    """The Hessian-vector product of a gradient Program, as one Program.

    ``program`` holds the gradient Program's assignments, then the inner product
    g = Σ_p ⟨∇_p L, V_p⟩ (its ``loss``; ``n_forward`` ends there), then the second reverse
    pass; its ``grads`` maps each parameter to its block of H·V. Its inputs are the model's,
    then one direction ``V_<p>`` per parameter, shaped like it.
    """

    program: Program
    gradient: dict[str, str]
    """Each parameter's gradient, as the gradient Program names it."""
    directions: dict[str, str]
    """Each parameter's entry of V, an input of ``program``."""
    argument: str
    """V's own name as a function argument: ``V``, unless the model uses that name."""
    n_gradient: int
    """How many assignments the gradient Program has (forward and backward passes)."""
    loss: str
    """The loss, as the gradient Program names it."""
    shared: tuple[str, ...] = ()
    """Values made for subexpressions several assignments compute (code shares them; the
    document may write them out)."""

    @property
    def hv(self) -> dict[str, str]:
        """Each parameter's block of H·V."""
        return self.program.grads

    @property
    def second_eqns(self) -> list[Eqn]:
        """The second reverse pass: the assignments after the inner product."""
        return self.program.backward_eqns

    def eqns_for(self, outputs: Iterable[str]) -> list[Eqn]:
        """The assignments that computing ``outputs`` needs, in order (the others are dead:
        the inner product g itself, and ``hvp`` needs neither the loss nor the gradient)."""
        return live_eqns(self.program.eqns, outputs)


def live_eqns(eqns: list[Eqn], outputs: Iterable[str]) -> list[Eqn]:
    """The assignments of ``eqns`` that the values ``outputs`` depend on, in order."""
    needed = set(outputs)
    kept = []
    for eqn in reversed(eqns):
        if eqn.out in needed:
            needed.update(eqn.reads)
            kept.append(eqn)
    return kept[::-1]


def hvp_program(gradient: Program) -> HVP:
    """Append g = Σ_p ⟨∇_p L, V_p⟩ to the gradient Program and apply backprop to g."""
    taken = _taken(gradient)
    program = with_eqns(gradient, list(gradient.eqns), n_forward=None, grads={})
    program.inputs = list(gradient.inputs)
    builder = Builder(program)
    directions = {}
    for param in gradient.params:
        name = builder.fresh(_avoiding(direction(param), taken))
        builder.declare(Var(name, gradient.shape(param), "input", doc=f"direction for {param}"))
        program.inputs.append(name)
        directions[param] = name
    terms = []
    for param, grad in gradient.grads.items():
        product = sympy.Symbol(grad) * sympy.Symbol(directions[param])
        term = builder.ewise(product, name=_avoiding(f"g_{param}", taken))
        if program.shape(term):
            term = builder.emit("sum", [term], {}, name=_avoiding(f"g_{param}", taken))
        terms.append(sympy.Symbol(term))
    program.loss = builder.ewise(sympy.Add(*terms), name=_avoiding("g", taken), shape_of=())
    cotangents = {e.out for e in gradient.backward_eqns}
    second = backprop(program, _second_naming(cotangents, taken))
    shared = _share_across(second, taken)
    used = set(second.vars)
    argument = next(
        a for a in (ARGUMENT + "_" * k for k in range(len(used) + 1)) if a not in used | taken
    )
    n_gradient = len(gradient.eqns) + sum(
        1 for e in second.eqns[: second.n_forward] if e.out in shared
    )
    return HVP(
        second,
        dict(gradient.grads),
        directions,
        argument,
        n_gradient,
        gradient.loss,
        tuple(shared),
    )


def _taken(program: Program) -> frozenset[str]:
    """Names a value of the second pass may not take, though no value has them: the module's
    own names, Python's built-ins, the helpers and the spec's functions, which a local
    variable of the same name would hide."""
    functions = program.meta.get("functions") or {}
    return GENERATED | BUILTINS | helper_names() | frozenset(functions)


def _avoiding(name: str, taken: Collection[str]) -> str:
    while name in taken:
        name += "_"
    return name


def _second_naming(cotangents: set[str], taken: frozenset[str]) -> Callable[[str], str]:
    def naming(value: str) -> str:
        return _avoiding(second_adjoint(value, cotangents), taken)

    return naming


def _share_across(program: Program, taken: frozenset[str]) -> list[str]:
    """Give an elementwise subexpression that several assignments compute a value of its own.

    The two passes repeat forms of the first: tanh′ = 1 − A² scales the cotangent in the
    first pass, and the tangent and the second-order adjoint in the second. Computed once,
    it saves two array passes at each later use. The largest repeated subexpressions are
    taken first; each new assignment goes just before its first use. Returns their names.
    """
    arrays = program.arrays()
    users: dict[sympy.Expr, list[str]] = {}
    exprs: dict[str, sympy.Expr] = {}
    for eqn in program.eqns:
        if eqn.op == "ewise":
            exprs[eqn.out] = eqn.attr("expr")
            for sub in _subexpressions(exprs[eqn.out], arrays):
                users.setdefault(sub, []).append(eqn.out)
    shared = sorted(
        (sub for sub, names in users.items() if len(names) > 1),
        key=lambda e: (-sympy.count_ops(e), sympy.srepr(e)),
    )
    builder = Builder(program)
    made: dict[str, sympy.Expr] = {}
    for sub in shared:
        # Inside a larger shared subexpression, its users include that value's definition.
        current = [
            n
            for n in dict.fromkeys(users[sub])
            if (made.get(n) or exprs[n]) != sub and (made.get(n) or exprs[n]).has(sub)
        ]
        if len(current) < 2:
            continue
        name = builder.fresh(_avoiding(f"{current[0]}_1", taken))
        args = sorted(s.name for s in sub.free_symbols if s.name in program.vars)
        program.vars[name] = Var(name, broadcast_shapes(*(program.shape(a) for a in args)))
        symbol = sympy.Symbol(name)
        for n in current:
            if n in made:
                made[n] = made[n].xreplace({sub: symbol})
            else:
                exprs[n] = exprs[n].xreplace({sub: symbol})
        made[name] = sub
        for inner in _subexpressions(sub, arrays):
            users.setdefault(inner, []).append(name)
    if not made:
        return []
    eqns, placed = [], set()

    def place(name: str) -> None:
        if name in placed:
            return
        placed.add(name)
        expr = made[name]
        for s in sorted(expr.free_symbols, key=lambda s: s.name):
            if s.name in made:
                place(s.name)
        eqns.append(_ewise_eqn(name, expr, program))

    n_forward = program.n_forward
    for i, eqn in enumerate(program.eqns):
        if i == program.n_forward:
            n_forward = len(eqns)
        if eqn.out in exprs and exprs[eqn.out] != eqn.attr("expr"):
            eqn = _ewise_eqn(eqn.out, exprs[eqn.out], program)
        for s in sorted(eqn.attr("expr").free_symbols if eqn.op == "ewise" else (), key=str):
            if s.name in made:
                place(s.name)
        eqns.append(eqn)
    program.eqns = eqns
    program.n_forward = n_forward
    return [n for n in (e.out for e in eqns) if n in made]


def _ewise_eqn(name: str, expr: sympy.Expr, program: Program) -> Eqn:
    args = tuple(sorted(s.name for s in expr.free_symbols if s.name in program.vars))
    return Eqn(name, "ewise", args, (("expr", expr),))


def _subexpressions(expr: sympy.Expr, arrays: set[str]) -> set[sympy.Expr]:
    """The compound subexpressions of ``expr`` that read an array, worth a value of their own
    (not a negation or a number times one name)."""
    found = set()
    for node in sympy.preorder_traversal(expr):
        if not isinstance(node, sympy.Expr) or node.is_Atom or node == expr:
            continue
        if not any(s.name in arrays for s in node.free_symbols):
            continue
        if node.is_Mul and len(node.args) == 2 and node.args[0].is_Number:
            continue
        found.add(node)
    return found
