"""The scalarized view: a Program at small concrete shapes, one SymPy symbol per entry.

Each op's ``scalar`` rule from the registry gives the meaning of one assignment on arrays of
SymPy scalars, so nothing here re-states an op. Two views come out of one walk: *shared*, where
every assignment's entries get symbols of their own (what the Program computes, intermediates
reused), and *expanded*, where every value is written out in the parameters and inputs (the
"calculus class" form, with nothing shared).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import sympy

from symbp.ir.ops import OPS
from symbp.ir.program import Eqn, Program, Shape, dim_symbol

DEFAULT_SIZE = 2


def concrete_sizes(
    program: Program, batch: int = 1, default: int = DEFAULT_SIZE
) -> dict[str, int]:
    """Named sizes made concrete: the batch ``m`` from ``batch``, any other name ``default``."""
    return {d: (batch if d == "m" else default) for d in program.dims()}


def concrete_shape(shape: Shape, sizes: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(sizes[d] if isinstance(d, str) else d for d in shape)


def scalar_work(program: Program, eqns: Iterable[Eqn], sizes: Mapping[str, int]) -> int:
    """How many scalar entries writing ``eqns`` out at ``sizes`` reads or makes, from shapes
    alone: each assignment counts its result's entries or its arguments' (a matrix product
    reads all of its arguments to make a few), whichever is more. An estimate, made before
    anything is written out, of the work :func:`scalarize` does."""

    def entries(name: str) -> int:
        return math.prod(concrete_shape(program.shape(name), sizes))

    return sum(max(entries(e.out), sum(entries(a) for a in e.args)) for e in eqns)


def size_values(sizes: Mapping[str, int]) -> dict[sympy.Symbol, sympy.Integer]:
    """Each named size's symbol (as :func:`symbp.ir.program.dim_symbol` makes it) → its value."""
    return {dim_symbol(d): sympy.Integer(v) for d, v in sizes.items()}


def concrete_attrs(eqn: Eqn, dims: Mapping[sympy.Symbol, sympy.Integer]) -> dict:
    """An assignment's attributes for its op's ``scalar`` rule: sizes made concrete (a loss's
    count ``m``), and the argument names under ``names``."""
    attrs = {k: (v.xreplace(dims) if isinstance(v, sympy.Basic) else v) for k, v in eqn.attrs}
    attrs["names"] = eqn.args
    return attrs


def entry_symbols(name: str, shape: tuple[int, ...], sep: str = "_") -> np.ndarray:
    """``W1_0_1`` for entry (0, 1) of ``W1``; a scalar is its own name. ``sep`` is what joins
    the name and the indices (see :func:`separator`)."""
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        label = sep.join([name, *map(str, idx)]) if idx else name
        out[idx] = sympy.Symbol(label)
    return out


def separator(program: Program) -> str:
    """``_`` joins a value's name and an entry's indices, unless that is ambiguous: a value
    ``E_t_2`` beside ``E_t`` would make entry (2, 0) of ``E_t`` and entry 0 of ``E_t_2`` one
    symbol. Such a Program's entries are joined with ``·``, which no name holds."""
    names = set(program.vars)
    for name in names:
        head = name
        while re.fullmatch(r".+_\d+", head):
            head = head.rsplit("_", 1)[0]
            if head in names:
                return "·"
    return "_"


@dataclass
class Scalarized:
    """Values as object arrays of SymPy scalars, and (shared view) each entry's definition."""

    values: dict[str, np.ndarray]
    definitions: dict[str, list[tuple[sympy.Symbol, sympy.Expr]]] = field(default_factory=dict)

    def entries(self, name: str) -> list[sympy.Expr]:
        return list(self.values[name].flat)


def leaves(program: Program, sizes: Mapping[str, int]) -> dict[str, np.ndarray]:
    """Inputs, parameters and constants as arrays of fresh symbols."""
    names = [*program.inputs, *program.params, *program.consts]
    sep = separator(program)
    return {n: entry_symbols(n, concrete_shape(program.shape(n), sizes), sep) for n in names}


def scalarize(
    program: Program,
    sizes: Mapping[str, int],
    eqns: Iterable[Eqn],
    *,
    shared: bool,
    start: Scalarized | None = None,
) -> Scalarized:
    """Apply each assignment's scalar rule; ``shared`` names every computed entry.

    ``start`` continues from an earlier walk (the backward pass reads the forward values).
    """
    result = start or Scalarized(dict(leaves(program, sizes)))
    dims = size_values(sizes)
    sep = separator(program)
    for eqn in eqns:
        attrs = concrete_attrs(eqn, dims)
        args = [result.values[a] for a in eqn.args]
        value = np.asarray(OPS[eqn.op].scalar(args, attrs), dtype=object)
        for idx in np.ndindex(value.shape):
            entry = value[idx]
            entry = entry if isinstance(entry, sympy.Basic) else sympy.Integer(int(entry))
            # The sizes are already concrete in the attributes, and the arguments are free of
            # them (by induction from the leaves), so this only guards an op's own rule. It is
            # done on the shared view alone: there every entry is one small assignment, while
            # an expanded entry is a tree whose written-out size grows exponentially with
            # depth, and ``xreplace`` walks every copy of every shared subtree.
            value[idx] = entry.xreplace(dims) if shared else entry
        if shared:
            symbols = entry_symbols(eqn.out, value.shape, sep)
            definitions = []
            for idx in np.ndindex(value.shape):
                expr = value[idx]
                if expr.is_Atom:
                    symbols[idx] = expr
                else:
                    definitions.append((symbols[idx], expr))
            result.definitions[eqn.out] = definitions
            value = symbols
        result.values[eqn.out] = value
    return result
