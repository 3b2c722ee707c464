"""The naive derivation, as seed 004 shows it: the loss written out, its gradients by
``sympy.diff`` with σ′ kept as a function and every repeated subexpression marked and counted,
then with σ′ written out, then after common subexpression elimination.

Nothing is derived twice: the loss is the scalarized view expanded (:mod:`symbp.analysis.scalar`),
the σ′-kept form and the repeated subexpressions are the redundancy report's
(:mod:`symbp.analysis.redundancy`), at the report's sizes (a batch of one, other sizes 2). A
model whose gradients would fill pages shows one entry's gradient, or says why even that
cannot be printed, with the size of the whole. The work that grows with the model runs under
the time limit in a child process (:mod:`symbp.limits`), which hands the expressions back
frozen (:func:`symbp.ir.display.freeze`).
"""

from __future__ import annotations

import dataclasses

import sympy

from symbp.analysis.redundancy import (
    expanded_loss,
    expanded_size,
    function_view,
    op_count,
    repeated_nodes,
    written_size,
)
from symbp.analysis.scalar import concrete_sizes, scalar_work, scalarize
from symbp.emit import latex_lines
from symbp.emit.latex_lines import equation
from symbp.emit.latex_writer import Section, Writer
from symbp.emit.printing import LatexPrinters
from symbp.ir import display as d
from symbp.ir.display import Line
from symbp.limits import run_stages

NAIVE_MAX_NODES = 2000
"""The largest expanded loss (nodes of its written-out tree) whose every gradient is printed."""
ENTRY_MAX_NODES = 600
"""The largest expanded loss of which one entry's gradient is printed: more fills pages."""
MARKED = 3
"""Repeated subexpressions marked in the gradients: the most repeated that are short enough to
underbrace (the rest are counted in the list below the gradients)."""
MARK_WIDTH = 24
"""The widest subexpression (in glyphs) marked with an underbrace where it is written."""
_TIMES = {2: "twice", 3: "three times"}


def _times(count: int) -> str:
    return _TIMES.get(count, f"{count} times")


WRITE_OUT_MAX = 20_000
"""The most scalar values (from the shapes alone) the section writes out to find how large the
naive gradients are: a model beyond it is described by its shapes, at once (a fixed size, so
that the document does not depend on the machine's speed, and the cost table keeps its time)."""


def section(w: Writer, timeout: float, limit: str) -> tuple[Section, list[str]]:
    """The section, and one line for each part the time limit left out of it."""
    out = Section("The naive derivation")
    program = w.program
    sizes = concrete_sizes(program, batch=1)
    at = _at(sizes)
    out.text(
        "The calculus-class way (seed 004): write the loss out in the inputs and parameters, "
        "then differentiate it by the chain rule, separately for every parameter"
        + (f" entry{at}." if at else ".")
    )
    work = scalar_work(program, program.forward_eqns, sizes)
    if work > WRITE_OUT_MAX:
        out.text(
            f"Written out{at}, the forward pass alone is about {work:,} scalar values, and the "
            "naive gradients repeat them for every parameter entry: far too many to print, "
            "or even to count here."
        )
        return out, []
    outcome = run_stages(lambda emit: emit("naive", _naive(w, sizes)), timeout)
    if "naive" not in outcome.results:
        out.text(f"The naive derivation is omitted: it did not finish within {limit}.")
        return out, [f"naive derivation skipped: over {limit}"]
    frozen = outcome.results["naive"]
    data = {k: _thaw(v, w.derivation.functions) for k, v in frozen.items()}
    if data["mode"] == "size":
        out.text(
            f"Written out{at}, the loss alone has about {data['loss_nodes']:,} nodes, and the "
            f"naive gradients of its {data['entries']:,} parameter entries about "
            f"{data['estimate']:,} operations: not even one entry's gradient fits on these "
            "pages. The cost table below counts what they would cost."
        )
        return out, []
    _show(w, out, data, sizes)
    return out, []


def _at(sizes: dict[str, int]) -> str:
    return (" at " + ", ".join(f"${k} = {v}$" for k, v in sizes.items())) if sizes else ""


def _naive(w: Writer, sizes: dict[str, int]) -> dict:
    """In the child: how large the naive gradients are (from the shared view, before writing
    anything out), and, where they fit, the loss written out, its gradients both ways, what
    they repeat and the CSE. ``mode`` says which: every gradient, one entry's, or the size."""
    program, functions = w.program, w.derivation.functions
    shared = scalarize(program, sizes, program.forward_eqns, shared=True)
    entries = [s for p in program.params for s in shared.values[p].flat]
    estimate = expanded_size(shared, program.loss, len(entries))
    loss_nodes = estimate // max(len(entries), 1)
    scalar = all(not program.shape(p) for p in program.params) and not sizes
    sizing = {"estimate": estimate, "loss_nodes": loss_nodes, "entries": len(entries)}
    if scalar and loss_nodes <= NAIVE_MAX_NODES:
        mode = "full"
    elif loss_nodes <= ENTRY_MAX_NODES:
        mode = "entry"
    else:
        return {k: _freeze(v, functions) for k, v in {**sizing, "mode": "size"}.items()}
    loss = expanded_loss(program, sizes)
    params = entries
    if mode == "entry":
        params = [_entry(loss, [shared.values[p].flat[0] for p in program.params])]
    view = function_view(loss, functions)
    kept = [sympy.diff(view, p) for p in params]
    written = [sympy.diff(loss, p) for p in params]
    result = {
        **sizing,
        "mode": mode,
        "loss": loss,
        "params": params,
        "kept": kept,
        "written": written,
        "kept_repeated": repeated_nodes(kept),
        "written_repeated": repeated_nodes(written) if mode == "full" else [],
        "written_ops": sum(op_count(g) for g in written),
    }
    if mode == "full":
        replacements, reduced = sympy.cse(written, symbols=sympy.numbered_symbols("c"))
        result["cse"] = replacements
        result["reduced"] = reduced
    return {k: _freeze(v, functions) for k, v in result.items()}


def _entry(loss: sympy.Expr, firsts: list[sympy.Symbol]) -> sympy.Symbol:
    """The parameter entry whose gradient is shown: the first one (of the first layer) whose
    gradient is small enough to print, else the one with the smallest."""
    best, smallest = firsts[-1], None
    for symbol in firsts:
        size = written_size(sympy.diff(loss, symbol))
        if size <= 4 * ENTRY_MAX_NODES:
            return symbol
        if smallest is None or size < smallest:
            best, smallest = symbol, size
    return best


def _freeze(value, functions):
    if isinstance(value, sympy.Basic):
        return ("expr", d.freeze(value, functions))
    if isinstance(value, list | tuple):
        return ("list", [_freeze(v, functions) for v in value])
    return ("value", value)


def _thaw(value, functions):
    kind, content = value
    if kind == "expr":
        return d.thaw(content, functions)
    if kind == "list":
        return [_thaw(v, functions) for v in content]
    return content


# ---- in the parent: the lines -------------------------------------------------------------------


def _entry_names(w, sizes: dict[str, int]) -> LatexPrinters:
    """Printers that also name each entry of an array: W₁'s entry (0, 1) is (W₁)_{1,2}."""
    program = w.program
    names = dict(w.notation.names)
    shared = scalarize(program, sizes, [], shared=True)
    for name in (*program.inputs, *program.params, *program.consts):
        array = shared.values[name]
        base = names[name]
        for idx in sympy.utilities.iterables.iproduct(*(range(n) for n in array.shape)):
            symbol = array[idx]
            if not isinstance(symbol, sympy.Symbol) or symbol.name == name:
                continue
            written = ",".join(str(i + 1) for i in idx)
            head = f"({base})" if "_" in base or "^" in base else base
            names[symbol.name] = f"{head}_{{{written}}}"
    pr = w.pr
    return LatexPrinters(
        pr.functions,
        names,
        pr.latex_printer.ranks,
        pr.latex_printer.bar_names,
        pr.latex_printer.symbols,
    )


def _entries(w, sizes: dict[str, int]) -> dict[sympy.Symbol, sympy.Expr]:
    """Each parameter entry's symbol in the expanded loss → that entry, as the lines say it."""
    program = w.program
    shared = scalarize(program, sizes, [], shared=True)
    out: dict[sympy.Symbol, sympy.Expr] = {}
    for name in program.params:
        array = shared.values[name]
        for idx in sympy.utilities.iterables.iproduct(*(range(n) for n in array.shape)):
            out[array[idx]] = d.Entry(sympy.Symbol(name), *idx) if idx else sympy.Symbol(name)
    return out


def _marked(expr: sympy.Expr, marks: list[tuple[sympy.Expr, int]]) -> sympy.Expr:
    """``expr`` with every occurrence of each marked subexpression wrapped in a Mark (its
    label), inner ones inside outer ones; a marked sub-sum or sub-product is grouped."""
    targets = dict(marks)

    def walk(node: sympy.Basic) -> sympy.Basic:
        if node.is_Atom or isinstance(node, sympy.logic.boolalg.Boolean | sympy.Piecewise):
            return node  # a condition (z > 0), or a case of one, is not marked inside
        if node in targets:
            inner = node.func(*(walk(a) for a in node.args))
            return d.Mark(inner, sympy.Integer(targets[node]))
        if isinstance(node, sympy.Add | sympy.Mul):
            for target, label in marks:
                if (
                    isinstance(target, node.func)
                    and len(target.args) < len(node.args)
                    and set(target.args) <= set(node.args)
                ):
                    rest = [a for a in node.args if a not in target.args]
                    inner = target.func(*(walk(a) for a in target.args))
                    grouped = d.Mark(inner, sympy.Integer(label))
                    return node.func(grouped, *(walk(a) for a in rest))
        return node.func(*(walk(a) for a in node.args))

    return walk(expr)


def _counts(pr: LatexPrinters, repeated: list, marks: dict) -> str:
    """The repeated subexpressions, each with how often it is written (and its mark), as a
    display whose long entries break over rows."""
    if not repeated:
        return "Nothing is written twice."
    rows = []
    for k, (expr, count) in enumerate(repeated, start=1):
        label = f"({k}) " if k in marks.values() else ""
        head = rf"\text{{{label}{_times(count)}:}}\quad"
        parts = latex_lines.rows(pr, expr, latex_lines.ROW - 12)
        rows.append(f"{head} & {parts[0]}")
        rows += [rf"& \quad {p}" for p in parts[1:]]
    body = " \\\\\n".join(rows)
    return (
        r"\noindent Written more than once (marked where it is short enough):"
        "\n\\begin{align*}\n" + body + "\n\\end{align*}"
    )


def _chosen_marks(pr: LatexPrinters, repeated: list) -> dict:
    """Subexpression → its number in the list, for the ones marked where they are written."""
    marks = {}
    for k, (expr, _) in enumerate(repeated, start=1):
        if len(marks) < MARKED and latex_lines.width(pr.latex(expr)) <= MARK_WIDTH:
            marks[expr] = k
    return marks


def _small_brackets(line: Line) -> Line:
    """Brackets of normal size: ``\\left(`` around an underbrace would grow to its depth."""
    tex = line.tex.replace(r"\left(", r"\bigl(").replace(r"\right)", r"\bigr)")
    return dataclasses.replace(line, tex=tex)


def _show(w: Writer, out: Section, data: dict, sizes: dict[str, int]) -> None:
    mode, estimate, total = data["mode"], data["estimate"], data["entries"]
    pr = _entry_names(w, sizes)
    loss = sympy.Symbol(w.program.loss)
    fixed = tuple(sorted(sizes.items())) if sizes else None
    entry = _entries(w, sizes)
    data["params"] = [entry[p] for p in data["params"]]

    def line(sides, **options):
        return _line(pr, sides, sizes=fixed, **options)

    if mode == "full":
        out.text(r"\noindent The loss written out:")
        out.show([line([loss, data["loss"]])], numbered=False)
    else:
        which = pr.latex(d.Deriv(loss, data["params"][0]))
        out.text(
            f"Written out, the loss has {written_size(data['loss']):,} nodes, and the naive "
            f"gradients of all {total:,} parameter entries would have about {estimate:,} "
            f"operations, so only one entry's is shown here, ${which}$."
        )
    for key, title in (
        (
            "kept",
            rf"\noindent {'Its gradients' if mode == 'full' else 'Its gradient'} by "
            r"\texttt{sympy.diff}, with $\sigma'$ kept as a "
            "function (as the seed writes it), each subexpression written more than once "
            "marked where it is written:",
        ),
        ("written", r"\noindent With the derivatives written out:"),
    )[: 2 if mode == "full" else 1]:
        repeated = data[f"{key}_repeated"]
        marks = _chosen_marks(pr, repeated)
        out.text(title)
        out.show(
            [
                _small_brackets(line([d.Deriv(loss, p), _marked(g, list(marks.items()))]))
                for p, g in zip(data["params"], data[key], strict=True)
            ],
            numbered=False,
        )
        out.text(_counts(pr, repeated, marks))
    if mode == "full":
        replacements, reduced = data["cse"], data["reduced"]
        if replacements:
            out.text(
                r"\noindent Common subexpression elimination (\texttt{sympy.cse}) names each "
                "repeated subexpression once:"
            )
            out.show([line([s, e], defines=((s, e),)) for s, e in replacements], numbered=False)
        out.text(r"\noindent and the gradients become:")
        out.show(
            [line([d.Deriv(loss, p), r]) for p, r in zip(data["params"], reduced, strict=True)],
            numbered=False,
        )
    else:
        out.text(
            "With the derivatives written out too, this one gradient has "
            f"{data['written_ops']:,} operations; backprop computes every gradient for a small "
            "multiple of the forward pass (the cost table)."
        )


def _line(pr: LatexPrinters, sides, **options):
    return equation(pr, sides, **options)
