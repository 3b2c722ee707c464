"""Where each array of a generated function lives: a new array, or one that is no longer read.

NumPy gives every assignment a new array. A backward pass written that way holds about twice
the memory it needs, and the fresh pages of each large array cost more than the arithmetic
written into them (on Linux every step faults them in again once the heap is trimmed). So an
assignment may write, through ``out=``, into the array of a value that the same function made
earlier and that nothing reads any more: a layer's pre-activation becomes its activation in
place, and the backward pass reuses the cotangents of the layer above.

The plan is made from the Program alone. A value's array is free once its last reader has
run, unless the function returns it (the forward cache, the gradients) or a view of it (a
transpose) is still read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sympy

from symbp.ir.ops import OPS
from symbp.ir.primitive import Printers
from symbp.ir.program import Eqn, Program

PRODUCTS = frozenset({"matmul", "affine", "outer"})
"""Ops whose result a sum may take over by name: ``dW1 = Xᵀ dZ1`` then ``dW1 += λ W1``."""


@dataclass
class BufferPlan:
    """``into[v] = u``: ``v`` is computed into ``u``'s array, ``u`` being dead by then.

    ``accumulate[v] = (t, rest)``: ``v = t + rest`` where ``t`` is a product only ``v`` reads;
    ``t`` is computed under the name ``v`` and ``rest`` added in place (``dW1 += λ W1``).
    """

    into: dict[str, str] = field(default_factory=dict)
    accumulate: dict[str, tuple[str, sympy.Expr]] = field(default_factory=dict)
    frees: dict[str, list[str]] = field(default_factory=dict)
    """Before the assignment to the key, ``del`` these names: arrays nothing reads any more.

    Only before the first sum that makes a parameter-sized temporary (``dW1 += λ W1``): by
    then the cotangents of the layers are dead, and freeing them keeps the peak near the
    gradients and the cache alone. Elsewhere the function's return frees them soon enough.
    """

    @property
    def renamed(self) -> dict[str, str]:
        """Values computed under the name of the sum that accumulates into them."""
        return {term: out for out, (term, _) in self.accumulate.items()}


def plan_buffers(
    eqns: list[Eqn], program: Program, keep: Iterable[str], printers: Printers
) -> BufferPlan:
    """Decide, in order, which assignments reuse a dead array of exactly their shape.

    An elementwise assignment prefers an argument it reads for the last time (the update is
    then in place: ``A1 = np.tanh(Z1, out=Z1)``); any other assignment that can write into an
    array takes the most recently freed one. Arrays the caller gets back are never reused.
    """
    last = _last_reads(eqns, set(keep), printers)
    reads = _read_counts(eqns, keep)
    plan = BufferPlan()
    owned: dict[str, tuple] = {}
    names: dict[str, list[str]] = {}  # an array's current holder → every name bound to it
    died: dict[str, int] = {}
    temporaries: list[int] = []
    products = {e.out for e in eqns if e.op in PRODUCTS}
    free: list[str] = []
    for i, eqn in enumerate(eqns):
        op = OPS[eqn.op]
        shape = program.shape(eqn.out)
        dying = [a for a in dict.fromkeys(eqn.args) if a in owned and last.get(a, -1) == i]
        fresh = bool(shape) and op.fresh and not op.aliases(eqn, printers)
        if fresh:
            term = _accumulated_term(eqn, shape, owned, dying, reads, products)
            if term is not None:
                rest = eqn.attr("expr") - sympy.Symbol(term)
                plan.accumulate[eqn.out] = (term, rest)
                dying.remove(term)
                names[eqn.out] = [n for n in names.pop(term) if n != term] + [eqn.out]
                if not rest.is_Symbol:
                    temporaries.append(i)
            else:
                choice = _choose(eqn, op, shape, owned, dying, free, printers)
                if choice is not None:
                    plan.into[eqn.out] = choice
                    if choice in free:
                        free.remove(choice)
                    else:
                        dying.remove(choice)
                    names[eqn.out] = [*names.pop(choice), eqn.out]
                else:
                    names[eqn.out] = [eqn.out]
            owned[eqn.out] = shape
        free.extend(dying)
        died.update((d, i) for d in dying)
    if temporaries:
        first = temporaries[0]
        viewed = {a for e in eqns if OPS[e.op].view for a in e.args}
        dead = [b for b in free if died[b] < first and viewed.isdisjoint(names[b])]
        if dead:
            plan.frees[eqns[first].out] = [n for b in dead for n in names[b]]
    return plan


def _choose(eqn, op, shape, owned, dying, free, printers) -> str | None:
    candidates = [a for a in dying if owned[a] == shape] if op.elementwise else []
    candidates += [b for b in reversed(free) if owned[b] == shape]
    for buffer in candidates:
        if op.into(eqn.out, buffer, list(eqn.args), dict(eqn.attrs), printers) is not None:
            return buffer
    return None


def _accumulated_term(eqn: Eqn, shape, owned, dying, reads, products) -> str | None:
    """A product ``t`` in ``out = t + rest`` of the sum's shape that only the sum reads."""
    expr = eqn.attr("expr") if eqn.op == "ewise" else None
    if not isinstance(expr, sympy.Add):
        return None
    for term in expr.args:
        name = getattr(term, "name", None)
        if (
            name in dying
            and name in products
            and owned[name] == shape
            and reads.get(name) == 1
            and term not in (expr - term).free_symbols
        ):
            return name
    return None


def _last_reads(eqns: list[Eqn], keep: set[str], printers: Printers) -> dict[str, int]:
    """Index of each value's last reader; a view (or another name of the same array, as a
    repeated step is) keeps its source alive as long as itself."""
    never = len(eqns)
    last: dict[str, int] = {}
    for i, eqn in enumerate(eqns):
        for arg in eqn.reads:
            last[arg] = i
    for name in keep:
        last[name] = never
    for eqn in reversed(eqns):
        if OPS[eqn.op].aliases(eqn, printers) and eqn.out in last:
            for arg in eqn.args:
                last[arg] = max(last.get(arg, -1), last[eqn.out])
    return last


def _read_counts(eqns: list[Eqn], keep: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for eqn in eqns:
        for arg in eqn.args:
            counts[arg] = counts.get(arg, 0) + 1
    for name in keep:
        counts[name] = counts.get(name, 0) + 1
    return counts
