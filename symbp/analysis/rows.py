"""Whether a model's loss splits over the rows of its batch, and how: the rule that lets
:mod:`symbp.dask` evaluate a batch in row chunks on many workers and combine their results.

A batch of m rows cut into chunks of m_c rows gives the batch's loss and gradients exactly
when the loss is

- a **mean** over rows, E(X) = Σ_j a_j · mean_rows(e_j) + R, where the coefficients a_j and
  the rest R do not depend on the rows (an L2 penalty, a constant): then
  E(X) = Σ_c (m_c / m) · E(X_c), whatever the chunks; or
- a **sum** over rows with nothing added that does not depend on them: E(X) = Σ_c E(X_c).

Anything else (a mean squared, a product of two means, a sum over rows plus an L2 penalty, a
softmax across the rows, X Xᵀ) gives another value on chunks than on the batch, so it is
refused, naming the first step that mixes rows. The gradients follow the loss: the gradient
of a sum of chunk losses is the sum of their gradients.

The rule is read off the forward Program, one step at a time, by what each value is with
respect to the batch:

========  ==================================================================================
const     does not depend on the rows (parameters, constants, inputs without the batch size)
rows      row i depends on row i of the inputs alone, the batch on axis 0
rows_t    the same, transposed: a matrix with the batch on axis 1 (Xᵀ)
mean      affine in means over rows, with coefficients that are const
sum       linear in sums over rows, with coefficients that are const, nothing added
========  ==================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from symbp.ir.program import Eqn, Program, dim_symbol

CONST, ROWS, ROWS_T, MEAN, SUM = "const", "rows", "rows_t", "mean", "sum"
TOTALS = (MEAN, SUM)


@dataclass(frozen=True)
class RowSplit:
    """How the loss of a batch follows from the losses of its row chunks."""

    size: str | None
    """The named size that counts rows (``m``); None where no input has one."""
    loss: str | None
    """"mean" (weigh the chunks' losses and gradients by their rows, over m), "sum" (add
    them), or None: the loss does not split, and ``note`` says why."""
    note: str = ""


class _Mixed(Exception):
    """A value that is none of the classes: its step mixes rows."""


def row_split(program: Program) -> RowSplit:
    """The row split of ``program``'s loss: over the first named size of an input that no
    parameter fixes (the batch), tried in order of the inputs until one splits."""
    fixed = {d for p in program.params for d in program.shape(p) if isinstance(d, str)}
    sizes = [
        shape[0]
        for shape in (program.shape(n) for n in program.inputs)
        if shape and isinstance(shape[0], str) and shape[0] not in fixed
    ]
    if not sizes:
        return RowSplit(
            None,
            None,
            "no input's shape starts with a named size that no parameter fixes, so there "
            "are no rows to split",
        )
    first = None
    for size in dict.fromkeys(sizes):
        split = _split(program, size)
        if split.loss is not None:
            return split
        first = first or split
    assert first is not None
    return first


def rowwise(program: Program, size: str) -> bool:
    """Whether ``program``'s result (a prediction Program's output) is computed row by row
    with the batch on its first axis, so that the chunks' results, stacked, are the batch's."""
    kinds, _ = _classify(program, size)
    return kinds.get(program.loss) == ROWS


def _split(program: Program, size: str) -> RowSplit:
    kinds, mixed = _classify(program, size)
    if program.loss in mixed:
        return RowSplit(size, None, mixed[program.loss])
    kind = kinds[program.loss]
    if kind == SUM:
        return RowSplit(size, SUM, f"the loss is a sum over the rows of {size}")
    note = (
        f"the loss is a mean over the rows of {size} (plus any terms that do not depend on them)"
        if kind == MEAN
        else f"the loss does not depend on the rows of {size}"
    )
    assert kind in (MEAN, CONST), kind  # a scalar has no row axis
    return RowSplit(size, MEAN, note)


def _classify(program: Program, size: str) -> tuple[dict[str, str], dict[str, str]]:
    """Each value's class, and for each value that is none, why (its first mixing step)."""
    kinds: dict[str, str] = {}
    mixed: dict[str, str] = {}
    for name in program.inputs:
        shape = program.shape(name)
        if size in shape[1:]:
            mixed[name] = f"the input {name} has the size {size} on an axis other than its first"
        else:
            kinds[name] = ROWS if shape and shape[0] == size else CONST
    for name in (*program.params, *program.consts):
        kinds[name] = CONST
    for eqn in program.forward_eqns:
        inherited = [mixed[a] for a in eqn.args if a in mixed]
        if inherited:
            mixed[eqn.out] = inherited[0]
            continue
        try:
            kinds[eqn.out] = _kind(eqn, [kinds[a] for a in eqn.args], program, size)
        except _Mixed as why:
            mixed[eqn.out] = f"the step {eqn.out} {why}"
    return kinds, mixed


def _kind(eqn: Eqn, kinds: list[str], program: Program, size: str) -> str:
    """The class of ``eqn``'s value from its arguments' classes, or _Mixed saying why not."""
    if all(k == CONST for k in kinds):
        return CONST
    rule = _RULES.get(eqn.op)
    if rule is None:
        raise _Mixed(f"is an operation ({eqn.op}) whose rows are not known to stay apart")
    return rule(eqn, kinds, program, size)


def _totals(kinds: list[str]) -> str | None:
    """The one total class among ``kinds`` (None if none), or _Mixed if both kinds appear."""
    found = {k for k in kinds if k in TOTALS}
    if len(found) > 1:
        raise _Mixed("adds a sum over rows to a mean over rows")
    return found.pop() if found else None


def _ewise(eqn: Eqn, kinds: list[str], program: Program, size: str) -> str:
    rowwise = {k for k in kinds if k in (ROWS, ROWS_T)}
    total = _totals(kinds)
    if rowwise and total:
        raise _Mixed("combines values of each row with a total over the rows")
    if rowwise:
        rank = len(program.shape(eqn.out))
        if len(rowwise) > 1 or any(
            k in rowwise and len(program.shape(a)) != rank
            for a, k in zip(eqn.args, kinds, strict=True)
        ):
            raise _Mixed("broadcasts the rows of one value across the rows of another")
        return rowwise.pop()
    expr = eqn.attr("expr")
    totals = [sympy.Symbol(a) for a, k in zip(eqn.args, kinds, strict=True) if k in TOTALS]
    for symbol in totals:
        if sympy.diff(expr, symbol).free_symbols & set(totals):
            raise _Mixed(f"is not linear in the {total}s over rows it reads")
    if total == SUM and expr.xreplace(dict.fromkeys(totals, sympy.Integer(0))) != 0:
        raise _Mixed("adds a term that does not depend on the rows to a sum over them")
    assert total is not None
    return total


def _flip(kind: str, rank: int) -> str:
    """The class of a transposed value."""
    if rank == 2 and kind in (ROWS, ROWS_T):
        return ROWS_T if kind == ROWS else ROWS
    return kind


def _matmul(eqn: Eqn, kinds: list[str], program: Program, size: str) -> str:
    ranks = [len(program.shape(a)) for a in eqn.args]
    a, b = (
        _flip(k, r) if eqn.attr(flag, False) else k
        for k, r, flag in zip(kinds, ranks, ("ta", "tb"), strict=True)
    )
    rank = len(program.shape(eqn.out))
    if a == ROWS and b == CONST and ranks[0] == 2:
        return ROWS
    if a == CONST and b == ROWS_T:
        return ROWS_T if rank == 2 else ROWS
    if (a, b) in ((ROWS_T, ROWS), (ROWS, ROWS)) and (a == ROWS_T or ranks[0] == 1):
        return SUM  # Σ over the rows of a product row by row
    if CONST in (a, b) and {a, b} - {CONST} <= set(TOTALS):
        return ({a, b} - {CONST}).pop()  # a total times a constant matrix
    raise _Mixed("multiplies rows with rows, or a total with a total")


def _affine(eqn: Eqn, kinds: list[str], program: Program, size: str) -> str:
    if kinds == [ROWS, CONST, CONST]:
        return ROWS
    raise _Mixed("is a layer whose weights depend on the rows")


def _transpose(eqn: Eqn, kinds: list[str], program: Program, size: str) -> str:
    return _flip(kinds[0], len(program.shape(eqn.args[0])))


def _reduce(total: str):
    def rule(eqn: Eqn, kinds: list[str], program: Program, size: str) -> str:
        (kind,) = kinds
        if kind in TOTALS:
            return kind  # a sum or mean of a total is still one (linear)
        rank = len(program.shape(eqn.args[0]))
        batch = 0 if kind == ROWS else 1
        axis = eqn.attr("axis")
        if axis is None or axis % rank == batch:
            return total
        if eqn.attr("keepdims", False) or axis % rank > batch:
            return kind
        return ROWS  # a matrix with the batch on axis 1, reduced over axis 0

    return rule


def _sum_squares(eqn: Eqn, kinds: list[str], program: Program, size: str) -> str:
    if kinds == [ROWS]:
        return SUM
    raise _Mixed("squares a total over rows")


def _softmax(eqn: Eqn, kinds: list[str], program: Program, size: str) -> str:
    if kinds == [ROWS] and len(program.shape(eqn.args[0])) == 2:
        return ROWS
    raise _Mixed("takes a softmax across the rows")


def _fused_loss(eqn: Eqn, kinds: list[str], program: Program, size: str) -> str:
    z, t = kinds
    if z in TOTALS or t in TOTALS or {z, t} - {CONST, ROWS, ROWS_T}:
        raise _Mixed(f"applies {eqn.op} to a total over rows")
    if eqn.op == "softmax_cross_entropy" and (z != ROWS or len(program.shape(eqn.args[0])) < 2):
        raise _Mixed("takes a softmax across the rows (the batch is its last axis)")
    count = eqn.attr("count")
    if count is not None and count == dim_symbol(size):
        return MEAN  # Σ over entries, divided by the batch's rows
    return SUM  # Σ over entries, divided by a count that does not depend on the rows


_RULES = {
    "ewise": _ewise,
    "matmul": _matmul,
    "affine": _affine,
    "transpose": _transpose,
    "sum": _reduce(SUM),
    "mean": _reduce(MEAN),
    "sum_squares": _sum_squares,
    "softmax": _softmax,
    "softmax_cross_entropy": _fused_loss,
    "sigmoid_binary_cross_entropy": _fused_loss,
    "squared_error": _fused_loss,
}
"""How each forward op's value relates to the rows; an op missing here is refused."""
