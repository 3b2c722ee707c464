"""The redundancy report: naive "calculus class" differentiation against CSE and backprop.

Four derivations of the same gradient, counted by one rule, ``op_count``:

(a) forward: the loss as the Program computes it, every intermediate value computed once;
(b) naive: ``sympy.diff`` of the fully expanded loss, separately for every parameter entry,
    each gradient counted as a tree (nothing shared);
(c) naive + CSE: the same gradients after ``sympy.cse`` over all of them together;
(d) backprop: the gradient Program's backward assignments, scalarized.

(a)+(d) over (a) is the cheap-gradient ratio of seed 000's Theorem 1. The report also checks
that (b) and (d) are the same functions, and lists the subexpressions the naive gradients
repeat (seed 004 §2.1). One count more, (e), is the Hessian-vector product: every assignment
``hvp`` computes from its arguments (its forward pass, the part of the backward pass it
reads, and the second reverse pass), set against Corollary 1's O(N + l).
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mpmath
import sympy

from symbp.analysis.numeric import Evaluator, random_point
from symbp.analysis.scalar import concrete_sizes, scalar_work, scalarize
from symbp.derivation import Derivation, derive
from symbp.errors import SpecError
from symbp.front.spec import Model, load
from symbp.ir.display import view
from symbp.ir.functions import FunctionTable
from symbp.ir.program import Program
from symbp.limits import DEFAULT_TIMEOUT, run_stages

DEFAULT_MAX_OPS = 200_000
AGREEMENT_POINTS = 3
TOP_REPEATED = 12
SYMBOLIC_LIMIT = 200
"""Largest difference (in operations) that the agreement check tries to expand to zero."""


def op_count(expr: sympy.Expr) -> int:
    """The one op-count rule: ``sympy.count_ops`` of the expression tree.

    Each +, −, ×, ÷, negation and power is one operation (an n-ary sum or product counts n − 1),
    and each function application (exp, tanh, σ, σ′, …) is one. Shared subexpressions are
    counted where they are written: a tree counts every copy, a list of definitions counts
    each definition once.
    """
    return int(sympy.count_ops(expr))


def mul_div_count(expr: sympy.Expr) -> int:
    """Multiplications and divisions only, the operations Baur–Strassen's bound of 3 counts.

    A product of k factors is k − 1 multiplications (a numeric coefficient is a factor, −1
    is a negation and free); its factors with negative exponents form one denominator, which
    costs one division. An integer power x**n is |n| − 1 multiplications: x² is x·x. Other
    powers (√x) and function calls are not multiplications. Subexpressions are counted where
    they are written, as in ``op_count``.
    """
    total = 0
    stack = [expr]
    while stack:
        node = stack.pop()
        if node.is_Atom:
            continue
        if node.is_Mul:
            top, bottom = 0, 0
            for factor in node.args:
                if factor.is_Rational:
                    top += int(factor.p not in (1, -1))
                    bottom += int(factor.q != 1)
                    continue
                base, exp = factor.as_base_exp()
                if exp.is_Integer and exp.is_negative:
                    bottom += 1
                    total += _power_muls(-exp)
                    stack.append(base)
                else:
                    top += 1
                    stack.append(factor)
            total += max(top - 1, 0) + max(bottom - 1, 0) + int(bottom > 0)
            continue
        if node.is_Pow and node.exp.is_Integer:
            total += _power_muls(abs(node.exp)) + int(bool(node.exp < 0))
            stack.append(node.base)
            continue
        stack.extend(node.args)
    return total


def _power_muls(n) -> int:
    return max(int(n) - 1, 0)


@dataclass
class Repeated:
    expr: str
    count: int
    view: str


@dataclass
class Report:
    """Counts, ratios, agreement and repeated subexpressions of one model at one size."""

    name: str
    sizes: dict[str, int]
    parameter_entries: int
    forward_ops: int
    naive_ops: int | None
    naive_cse_ops: int | None
    backprop_ops: int
    forward_muldiv: int
    backprop_muldiv: int
    agree: bool | None
    agreement: str
    repeated: list[Repeated] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    naive_estimate: int | None = None
    """The size of the naive gradients estimated before expanding (what --max-ops tests)."""
    hvp_ops: int | None = None
    """(e): the operations of everything ``hvp`` computes, forward pass included."""

    @property
    def hvp_ratio(self) -> float | None:
        """(e) ÷ (a): the Hessian-vector product against the forward pass."""
        return self.ratio(self.hvp_ops)

    @property
    def corollary_ratio(self) -> float | None:
        """(e) ÷ (N + l), N the forward pass's operations and l the parameter entries: the
        constant of Corollary 1's O(N + l)."""
        if self.hvp_ops is None:
            return None
        return self.hvp_ops / max(self.forward_ops + self.parameter_entries, 1)

    @property
    def cheap_gradient_ratio(self) -> float:
        return (self.forward_ops + self.backprop_ops) / max(self.forward_ops, 1)

    @property
    def cheap_gradient_muldiv_ratio(self) -> float:
        return (self.forward_muldiv + self.backprop_muldiv) / max(self.forward_muldiv, 1)

    def ratio(self, count: int | None) -> float | None:
        return None if count is None else count / max(self.forward_ops, 1)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cheap_gradient_ratio"] = self.cheap_gradient_ratio
        data["cheap_gradient_muldiv_ratio"] = self.cheap_gradient_muldiv_ratio
        data["ratios"] = {
            "naive": self.ratio(self.naive_ops),
            "naive_cse": self.ratio(self.naive_cse_ops),
            "backprop": self.ratio(self.backprop_ops),
            "hvp": self.hvp_ratio,
        }
        data["hvp_ratio"] = self.hvp_ratio
        data["corollary_ratio"] = self.corollary_ratio
        return data


def report(
    spec: str | Path | Model | Derivation,
    *,
    batch: int = 1,
    max_ops: int = DEFAULT_MAX_OPS,
    timeout: float = DEFAULT_TIMEOUT,
    seed: int = 0,
    limit: str | None = None,
    repeated: bool = True,
) -> Report:
    """Count the four derivations of a model's gradient at batch size ``batch``.

    ``timeout`` bounds the whole case, and holds even inside SymPy's C code: the stages run in
    a child process (:mod:`symbp.limits`) that is killed at the deadline. The forward and
    backprop counts come first; if they alone cannot finish (estimated from the shapes before
    anything is written out, or measured), the error says so. Each later stage (naive gradients,
    CSE, agreement, repeated subexpressions) still running at the deadline is named in
    ``skipped``. ``limit`` describes the limit in those messages; ``repeated=False`` leaves
    out the repeated subexpressions.
    """
    derivation = _derivation(spec)
    program = derivation.program
    sizes = concrete_sizes(program, batch)
    limit = limit or f"the time limit of {timeout:g} s (--timeout)"
    work = scalar_work(program, program.eqns, sizes)
    if work > WORK_PER_SECOND * timeout:
        raise TooSlow(
            f"counting the forward and backprop passes{_at(sizes)} means writing out about "
            f"{work:,} scalar values, far more than fits in {limit}"
        )
    outcome = run_stages(
        lambda emit: _stages(derivation, sizes, max_ops, seed, repeated, emit),
        max(timeout, 0.0),
    )
    got = outcome.results
    if "counts" not in got:
        raise TooSlow(
            f"counting the forward and backprop passes{_at(sizes)} took more than {limit}"
        )
    counts = got["counts"]
    result = Report(
        name=program.name,
        sizes=sizes,
        agree=None,
        agreement="not checked: the naive gradients were skipped",
        naive_ops=got.get("naive"),
        naive_cse_ops=got.get("cse"),
        hvp_ops=got.get("hvp"),
        **counts,
    )
    over_time = f"over {limit}"
    if "hvp" not in got:
        result.skipped.append(f"Hessian-vector product count skipped: {over_time}")
    if counts["naive_estimate"] > max_ops:
        result.skipped.append(
            f"naive and naive+CSE columns skipped: the naive gradients would have about "
            f"{counts['naive_estimate']:,} operations (more than --max-ops {max_ops:,})"
        )
    elif "naive" not in got:
        result.skipped.append(f"naive and naive+CSE columns skipped: {over_time}")
    else:
        if "cse" not in got:
            result.skipped.append(f"naive+CSE column skipped: {over_time}")
        result.agree, result.agreement = got.get("agreement", (None, f"not checked: {over_time}"))
        if "repeated" in got:
            result.repeated = got["repeated"]
        elif repeated:
            result.skipped.append(f"repeated subexpressions skipped: {over_time}")
    return result


def _at(sizes: dict[str, int]) -> str:
    return " at " + ", ".join(f"{k} = {v}" for k, v in sizes.items()) if sizes else ""


class TooSlow(SpecError):
    """Even the forward and backprop counts do not fit in the time limit."""


WORK_PER_SECOND = 50_000
"""Scalar values :func:`scalarize` writes out per second, generously (it manages 3,000 to
15,000 on the machine the README's figures come from): a case that would need more than this
times its time limit is refused before it starts."""


def _stages(
    derivation: Derivation, sizes: dict[str, int], max_ops: int, seed: int, repeated: bool, emit
) -> None:
    """The report's stages in order, each result handed on (``emit``) as soon as it is ready."""
    program = derivation.program
    shared = scalarize(program, sizes, program.forward_eqns, shared=True)
    forward_defs = [e for name in shared.definitions for _, e in shared.definitions[name]]
    backward = scalarize(program, sizes, program.backward_eqns, shared=True, start=shared)
    backward_defs = [
        e for eqn in program.backward_eqns for _, e in backward.definitions.get(eqn.out, [])
    ]
    params = [s for p in program.params for s in shared.values[p].flat]
    estimate = expanded_size(shared, program.loss, len(params))
    emit(
        "counts",
        {
            "parameter_entries": len(params),
            "forward_ops": sum(op_count(e) for e in forward_defs),
            "backprop_ops": sum(op_count(e) for e in backward_defs),
            "forward_muldiv": sum(mul_div_count(e) for e in forward_defs),
            "backprop_muldiv": sum(mul_div_count(e) for e in backward_defs),
            "naive_estimate": estimate,
        },
    )
    emit("hvp", hvp_ops(derivation, sizes))
    if estimate > max_ops:
        return
    expanded = scalarize(program, sizes, program.eqns, shared=False)
    loss = expanded.values[program.loss].flat[0]
    naive = [sympy.diff(loss, p) for p in params]
    naive_ops = sum(op_count(g) for g in naive)
    emit("naive", naive_ops)
    replacements, reduced = sympy.cse(naive)
    emit(
        "cse",
        sum(op_count(e) for _, e in replacements) + sum(op_count(e) for e in reduced),
    )
    leaf_symbols = [
        s
        for name in (*program.inputs, *program.params, *program.consts)
        for s in expanded.values[name].flat
    ]
    backprop_grads = [g for p in program.params for g in expanded.values[program.grads[p]].flat]
    emit(
        "agreement",
        _agreement(program, naive, backprop_grads, sizes, seed, leaf_symbols, naive_ops),
    )
    if not repeated:
        return
    expanded_view = repeated_subexpressions(naive, "expanded")
    in_function_view = [sympy.diff(function_view(loss, derivation.functions), p) for p in params]
    emit("repeated", repeated_subexpressions(in_function_view, "function") + expanded_view)


def hvp_ops(derivation: Derivation, sizes: dict[str, int]) -> int:
    """(e): the operations of every assignment ``hvp`` computes from its arguments, scalarized
    at ``sizes`` and counted as (a) and (d) are."""
    second = derivation.hvp
    eqns = second.eqns_for(second.hv.values())
    shared = scalarize(second.program, sizes, eqns, shared=True)
    return sum(op_count(e) for eqn in eqns for _, e in shared.definitions.get(eqn.out, []))


def _derivation(spec: str | Path | Model | Derivation) -> Derivation:
    if isinstance(spec, Derivation):
        return spec
    if isinstance(spec, Model):
        return derive(spec)
    return derive(load(spec))


def expanded_size(shared, loss: str, parameters: int) -> int:
    """The size of the loss written out as one tree, from the shared definitions, times the
    number of gradients: an estimate of the naive work made without expanding anything."""
    sizes: dict[sympy.Symbol, int] = {}
    for definitions in shared.definitions.values():
        for symbol, expr in definitions:
            sizes[symbol] = _tree_size(expr, sizes)
    loss_symbol = shared.values[loss].flat[0]
    return sizes.get(loss_symbol, 1) * max(parameters, 1)


def _tree_size(expr: sympy.Expr, sizes: dict[sympy.Symbol, int]) -> int:
    if expr.is_Symbol:
        return sizes.get(expr, 1)
    if expr.is_Atom:
        return 1
    return 1 + sum(_tree_size(a, sizes) for a in expr.args)


# --- the function view: σ′(u) as one node, as the seed writes it -------------------------


def function_view(expr: sympy.Expr, functions: FunctionTable) -> sympy.Expr:
    """The expression with every table function of one argument replaced by a stand-in whose
    derivative is a named ``f_prime(u)`` (:func:`symbp.ir.display.view`), so that naive
    gradients keep σ′(wx + b) as one subexpression. A function of two (``maximum``) keeps its
    own derivative."""
    mapping = {}
    for entry in functions.values():
        if entry.cls is None or entry.name == "identity" or entry.arity != 1:
            continue
        mapping[entry.cls] = view(entry.name)
    return expr.replace(lambda e: type(e) in mapping, lambda e: mapping[type(e)](*e.args))


def expanded_loss(program: Program, sizes: dict[str, int]) -> sympy.Expr:
    """The loss written out in the inputs, parameters and constants (the scalarized view,
    expanded): the "calculus class" expression the naive gradients differentiate."""
    expanded = scalarize(program, sizes, program.forward_eqns, shared=False)
    return expanded.values[program.loss].flat[0]


# --- repeated subexpressions -------------------------------------------------------------


def repeated_subexpressions(gradients: list[sympy.Expr], view: str) -> list[Repeated]:
    """Subexpressions written more than once across the gradients, most repeated first.

    A product or sum also contains its sub-products and sub-sums: in x·(σ(u) − t)·σ′(u) the
    factor (σ(u) − t)·σ′(u) is one of them, as the seed reads it. A negation −u is not listed
    apart from u. Occurrences are counted as in the written-out trees, but each distinct
    subexpression is visited once: the trees repeat subtrees exponentially often.
    """
    return [Repeated(text, count, view) for text, _, count in _repeated(gradients)]


def repeated_nodes(gradients: list[sympy.Expr]) -> list[tuple[sympy.Expr, int]]:
    """The subexpressions :func:`repeated_subexpressions` lists, as expressions (the LaTeX
    derivation marks them where they are written), with how often each is written."""
    return [(e, count) for _, e, count in _repeated(gradients)]


def _repeated(gradients: list[sympy.Expr]) -> list[tuple[str, sympy.Expr, int]]:
    written = _occurrences(gradients)
    counts: Counter = Counter()
    for node, times in written.items():
        if node.is_Mul and node.args[0] == -1 and len(node.args) == 2:
            continue
        counts[node] += times
        if isinstance(node, sympy.Mul | sympy.Add) and len(node.args) <= 6:
            for size in range(2, len(node.args)):
                for subset in itertools.combinations(node.args, size):
                    counts[node.func(*subset)] += times
    sizes: dict[sympy.Basic, int] = {}
    groups: dict[tuple[int, int], list[sympy.Expr]] = {}
    by_count: dict[int, list[sympy.Expr]] = {}
    for e, c in counts.items():
        if c > 1:
            groups.setdefault((-c, -written_size(e, sizes)), []).append(e)
            by_count.setdefault(c, []).append(e)
    # Most repeated first, then largest, then by text; printing is costly for big trees, so
    # only the groups that reach the top are sorted by their text.
    chosen: list[tuple[str, sympy.Expr, int]] = []
    for key in sorted(groups):
        count = -key[0]
        texts = sorted(((str(e), e) for e in groups[key]), key=lambda pair: pair[0])
        for text, e in texts:
            if not any(e != e2 and _inside(e, e2) for e2 in by_count[count]):
                chosen.append((text, e, count))
        if len(chosen) >= TOP_REPEATED:
            break
    return chosen[:TOP_REPEATED]


def _occurrences(roots: list[sympy.Expr]) -> Counter:
    """How often each non-atomic subexpression is written in the trees of ``roots``.

    Parents are visited before their children over the distinct subexpressions (a DAG), and
    each passes its count down to every argument slot it has.
    """
    order: list[sympy.Basic] = []
    seen: set[sympy.Basic] = set()
    for root in roots:
        if root.is_Atom or root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(root.args))]
        while stack:
            node, args = stack[-1]
            for arg in args:
                if not arg.is_Atom and arg not in seen:
                    seen.add(arg)
                    stack.append((arg, iter(arg.args)))
                    break
            else:
                stack.pop()
                order.append(node)
    written: Counter = Counter(r for r in roots if not r.is_Atom)
    for node in reversed(order):  # every parent comes after its children in ``order``
        for arg in node.args:
            if not arg.is_Atom:
                written[arg] += written[node]
    return written


def written_size(expr: sympy.Basic, sizes: dict[sympy.Basic, int] | None = None) -> int:
    """The number of nodes of ``expr`` written out as a tree, memoized over its distinct
    subexpressions (the tree repeats them: walking it node by node could take forever)."""
    sizes = {} if sizes is None else sizes
    stack = [expr]
    while stack:
        node = stack[-1]
        if node in sizes:
            stack.pop()
            continue
        pending = [a for a in node.args if a not in sizes]
        if pending:
            stack.extend(pending)
            continue
        sizes[node] = 1 + sum(sizes[a] for a in node.args)
        stack.pop()
    return sizes[expr]


def _inside(small: sympy.Expr, large: sympy.Expr) -> bool:
    """Whether ``small`` is a term of the sum or a factor of the product ``large`` (or a
    sub-sum/sub-product of it): then listing ``large`` says it already. A function's argument
    (wx + b inside σ(wx + b)) is listed on its own: that is what the seed points at."""
    if not isinstance(large, sympy.Mul | sympy.Add):
        return False
    if small in large.args:
        return True
    return isinstance(small, large.func) and set(small.args) <= set(large.args)


# --- agreement --------------------------------------------------------------------------


def _agreement(
    program: Program,
    naive: list,
    backprop: list,
    sizes: dict[str, int],
    seed: int,
    symbols: list[sympy.Symbol],
    naive_ops: int | None = None,
) -> tuple[bool, str]:
    """Same function? Symbolically when the difference simplifies cheaply to 0, otherwise at
    random rational points evaluated to 50 digits (targets drawn as one-hot rows where the
    loss assumes them). ``symbols`` are all the leaves (inputs, parameters, constants): a
    point gives each one a value, even one that cancels from a difference."""
    differences = [a - b for a, b in zip(naive, backprop, strict=True)]
    cheap = naive_ops if naive_ops is not None else sum(op_count(g) for g in naive)
    if cheap <= SYMBOLIC_LIMIT and sum(op_count(d) for d in differences) <= SYMBOLIC_LIMIT:
        differences = [sympy.expand(d) for d in differences]
        if all(d == 0 for d in differences):
            return True, "symbolically equal"
    rng = random.Random(seed)
    symbols = sorted(set(symbols), key=str)
    kinds = program.meta.get("kinds", {})
    functions = program.meta.get("functions")
    for _ in range(AGREEMENT_POINTS):
        point = random_point(program, symbols, kinds, sizes, rng)
        evaluate = Evaluator(point, functions)
        for a, b in zip(naive, backprop, strict=True):
            va, vb = evaluate(a), evaluate(b)
            if abs(va - vb) > mpmath.mpf("1e-30") * max(abs(va), 1):
                return (
                    False,
                    f"differ at a random point: {mpmath.nstr(va, 12)} ≠ {mpmath.nstr(vb, 12)}",
                )
    return True, f"equal at {AGREEMENT_POINTS} random rational points (50 digits, to 1e-30)"


# --- sweeps and printing ----------------------------------------------------------------


SWEEP_RESERVE = 0.5
"""Seconds of a sweep's time limit kept, at most, for each case after the running one."""


def sweep(
    make_model: Callable[[int, int], Model],
    depths: list[int],
    widths: list[int],
    *,
    batch: int,
    max_ops: int,
    timeout: float,
    progress: Callable[[], None] | None = None,
) -> list[tuple[int, int, Report | str]]:
    """Reports for every (depth, width), to see how each count grows.

    ``timeout`` bounds the whole sweep. The cases run smallest first, and each may use the
    time left but a reserve for the cases after it (half the time left, at most
    :data:`SWEEP_RESERVE` each, enough for their forward and backprop counts): the small
    cases are counted in full, and the large ones are those the limit cuts. A case whose
    counts do not fit in its share is the reason it was skipped, a string, in place of its
    report.
    """
    deadline = time.monotonic() + timeout
    cases = [(depth, width) for depth in depths for width in widths]
    rows: list[tuple[int, int, Report | str]] = []
    for done, (depth, width) in enumerate(cases):
        left, after = max(deadline - time.monotonic(), 0.0), len(cases) - done - 1
        share = left - after * min(SWEEP_RESERVE, left / (2 * (after + 1)))
        limit = f"its share ({share:.3g} s) of the sweep's time limit of {timeout:g} s (--timeout)"
        try:
            result: Report | str = report(
                make_model(depth, width),
                batch=batch,
                max_ops=max_ops,
                timeout=share,
                limit=limit,
            )
        except TooSlow as err:
            result = f"not counted: {err.message}"
        rows.append((depth, width, result))
        if progress:
            progress()
    return rows


LATEX_MAX_OPS = 20_000
"""The LaTeX cost table leaves out naive columns estimated above this size: the document must
not depend on the machine's speed (the committed ``generated/*.tex`` are checked for
freshness), so a fixed size decides, and the time limit only guards the rest."""


def latex_cost(
    derivation: Derivation, timeout: float = DEFAULT_TIMEOUT, limit: str | None = None
) -> dict[str, Any]:
    """The LaTeX derivation's cost section: table rows (derivation, operations, ratio to
    forward), sentences on how they were counted, in plain text, and ``skipped``: one line for
    each part the time limit (described by ``limit``) cut."""
    limit = limit or f"the time limit of {timeout:g} s (--timeout)"
    try:
        result = report(
            derivation, max_ops=LATEX_MAX_OPS, timeout=timeout, limit=limit, repeated=False
        )
    except TooSlow as err:
        return {
            "rows": [],
            "notes": [f"The cost table is left out: {err.message}."],
            "skipped": [f"cost table skipped: {err.message}"],
        }
    rows = [("derivation", "operations", "ratio to forward")]
    for label, count in (
        ("(a) forward, as the program computes it", result.forward_ops),
        ("(b) naive sympy.diff, per parameter entry", result.naive_ops),
        ("(c) naive + sympy.cse", result.naive_cse_ops),
        ("(d) backprop", result.backprop_ops),
        ("forward and gradient, (a) + (d)", result.forward_ops + result.backprop_ops),
        ("(e) Hessian-vector product, all of it", result.hvp_ops),
    ):
        ratio = result.ratio(count)
        rows.append(
            (
                label,
                "--" if count is None else str(count),
                "--" if ratio is None else f"{ratio:.2f}",
            )
        )
    sizes = ", ".join(f"{k} = {v}" for k, v in result.sizes.items())
    notes = [
        "The loss is written out in scalars"
        + (f" at {sizes}" if sizes else "")
        + f" ({result.parameter_entries} parameter entries). Operations are counted by "
        "sympy.count_ops: each +, −, ×, ÷, power, negation and function call is one. "
        f"Forward and gradient together cost {result.cheap_gradient_ratio:.2f} times the "
        f"forward pass ({result.cheap_gradient_muldiv_ratio:.2f} counting × and ÷ only), "
        "a small constant, as the cheap-gradient principle says."
    ]
    if result.hvp_ops is not None:
        notes.append(
            f"The Hessian-vector product costs {result.hvp_ratio:.2f} times the forward pass, "
            f"{result.corollary_ratio:.2f} times N + l (N = {result.forward_ops} operations of "
            f"the forward pass, l = {result.parameter_entries} parameter entries): seed 000's "
            "Corollary 1 says O(N + l)."
        )
    timed_out = [f"cost table: {s}" for s in result.skipped if limit in s]
    if result.naive_ops is None:
        if result.naive_estimate is not None and result.naive_estimate > LATEX_MAX_OPS:
            notes.append(
                "The naive columns are left out: written out, the naive gradients would have "
                f"about {result.naive_estimate:,} operations. symbp report counts them."
            )
        else:
            notes.append("The naive columns are left out: " + "; ".join(result.skipped) + ".")
    elif result.agree is not None:
        verdict = "the same functions" if result.agree else "NOT the same functions"
        notes.append(f"The naive and backprop gradients are {verdict} ({result.agreement}).")
    else:
        notes.append(f"The naive and backprop gradients were {result.agreement}.")
        timed_out.append(f"cost table: agreement {result.agreement}")
    return {"rows": rows, "notes": notes, "skipped": timed_out}
