"""The backprop derivation as a LaTeX document: context built here, ``derivation.tex.j2`` prints.

Every string of the document is made in Python; the template only loops and prints. Names follow
the math: ``W1`` → ``W_{1}``, ``lam`` → ``\\lambda``, adjoints ``dZ1`` → ``\\bar{Z}_{1}``.
"""

from __future__ import annotations

import time

import sympy

from symbp.analysis.redundancy import latex_cost, written_size
from symbp.derivation import Derivation
from symbp.emit.latex_hvp import hvp_section
from symbp.emit.latex_names import atom, backward_latex_name, escape_text, latex_name
from symbp.emit.printing import LatexPrinters, Printers
from symbp.emit.templating import render
from symbp.ir.losses import LOSSES
from symbp.ir.ops import OPS
from symbp.ir.program import Program, active_values
from symbp.limits import DEFAULT_TIMEOUT, run_stages
from symbp.provenance import stamp_text


def printers_for(derivation: Derivation) -> Printers:
    program = derivation.program
    # Braces keep a name one atom, so an op form may add its own subscript or transpose.
    names = {n: atom(backward_latex_name(n, program)) for n in program.vars}
    arrays = frozenset(n for n, v in program.vars.items() if v.shape)
    return LatexPrinters(derivation.functions, names, arrays)


def _shape_tex(shape) -> str:
    if not shape:
        return r"\text{scalar}"
    return r" \times ".join(latex_name(d) if isinstance(d, str) else str(d) for d in shape)


def _eqn_tex(eqn, printers: Printers) -> str:
    return OPS[eqn.op].latex(list(eqn.args), {**dict(eqn.attrs), "names": eqn.args}, printers)


def _bar(name: str) -> str:
    return latex_name(name, bar=True)


def _vjp_term(eqn, arg: str, program: Program, pr: Printers) -> tuple[str, str, str]:
    """For one child: ``\\bar{v}_j ∂v_j/∂v_i``, the derivative by name, and the product form
    (the last two from the op's record)."""
    g, n = _bar(eqn.out), latex_name
    generic = rf"{g}\,\frac{{\partial {n(eqn.out)}}}{{\partial {n(arg)}}}"
    named, product = OPS[eqn.op].latex_adjoint(eqn, eqn.args.index(arg), program, pr)
    return generic, named, product


def _active(program: Program) -> set[str]:
    depends, reaches = active_values(program.forward_eqns, program.params, program.loss)
    return depends & reaches


def backward_steps(derivation: Derivation, pr: Printers) -> list[dict]:
    """One step per value on a path from a parameter to the loss, loss first."""
    program = derivation.program
    active = _active(program)
    forward = program.forward_eqns
    order = [e.out for e in reversed(forward) if e.out in active] + [
        p for p in program.params if p in active
    ]
    producer = {e.out: e for e in program.backward_eqns}
    shown: set[str] = set()
    steps = []
    for value in order:
        name = _bar(value)
        if value == program.loss:
            steps.append({"name": name, "lines": ["1"], "terms": [], "where": []})
            continue
        children = [e for e in forward if e.out in active and value in e.args]
        terms = []
        for child in children:
            generic, named, product = _vjp_term(child, value, program, pr)
            terms.append(
                {
                    "child": latex_name(child.out),
                    "generic": generic,
                    "named": named,
                    "product": product,
                }
            )
        lines = [" + ".join(t["generic"] for t in terms)]
        if any(t["named"] for t in terms):
            lines.append(" + ".join(t["named"] or t["product"] for t in terms))
        lines.append(" + ".join(t["product"] for t in terms))
        final_name = program.grads.get(value, "d" + value)
        # A gradient that is another value's adjoint (b̄ = z̄) was shown in that value's step.
        eqn = producer.get(final_name) if final_name == "d" + value else None
        where = []
        if eqn is not None:
            lines.append(_eqn_tex(eqn, pr))
            where = [
                rf"{pr.latex_name(e.out)} &= {_eqn_tex(e, pr)}"
                for e in _helpers(eqn, producer, shown)
            ]
        steps.append(
            {
                "name": name,
                "lines": _dedupe(lines),
                "terms": terms if len(terms) > 1 else [],
                "where": where,
            }
        )
    return steps


def _dedupe(lines: list[str]) -> list[str]:
    """The lines without repeats, a repeat being a line that prints the same (``X^{\\top}``
    and ``{X}^{\\top}``). The later form is kept: the last line is the code's assignment."""
    keys = [_printed_form(line) for line in lines]
    return [
        line
        for i, (line, key) in enumerate(zip(lines, keys, strict=True))
        if line and key not in keys[i + 1 :]
    ]


def _printed_form(tex: str) -> str:
    """``tex`` without spaces and without the braces that only group a name (``{W_{2}}``);
    braces that hold an argument (``\\frac{a}{b}``, ``x_{1}``, ``\\bar{Z}``) stay."""
    chars = list(tex)
    depth_open: list[tuple[int, bool]] = []
    drop: set[int] = set()
    for i, c in enumerate(chars):
        if c == "{":
            before = tex[:i]  # a group after a space is not an argument, as symbp writes
            argument = bool(before) and (before[-1] in "_^}" or before[-1].isalpha())
            escaped = before.endswith("\\")
            depth_open.append((i, not argument and not escaped))
        elif c == "}" and depth_open and not tex[:i].endswith("\\"):
            start, free = depth_open.pop()
            if free:
                drop.update((start, i))
    return "".join(c for i, c in enumerate(chars) if i not in drop and not c.isspace())


def _helpers(eqn, producer: dict, shown: set[str]) -> list:
    """Backward values that ``eqn`` uses and no earlier step showed (softmax, contributions)."""
    found: dict[str, None] = {}

    def visit(e) -> None:
        for a in e.args:
            if a in producer and a not in shown:
                shown.add(a)
                visit(producer[a])
                found[a] = None

    visit(eqn)
    shown.add(eqn.out)
    order = list(producer)
    return [producer[a] for a in sorted(found, key=order.index)]


def network_matrix_form(derivation: Derivation, notation: str) -> list[str] | None:
    """Seed 002 (column vectors, δˡ, BP1–BP4) or seed 003 (row-major batch) equations."""
    net = derivation.model.network
    if net is None:
        return None
    depth = len(net.layers)
    act = net.layers[-1].activation
    loss = LOSSES[net.loss]
    fused = loss.takes_logits
    mean = net.reduction == "mean"
    lines = []
    if notation == "seed002":
        out = "a^{L} - t" if fused or act == "identity" else r"(a^{L} - t) \odot \sigma'(z^{L})"
        lines.append(rf"\delta^{{L}} = {out} \quad \text{{(BP1, $L = {depth}$)}}")
        lines.append(
            r"\delta^{l} = \left((W^{l+1})^{\top} \delta^{l+1}\right) \odot \sigma'(z^{l})"
            r" \quad \text{(BP2)}"
        )
        lines.append(r"\frac{\partial C}{\partial b^{l}} = \delta^{l} \quad \text{(BP3)}")
        lines.append(
            r"\frac{\partial C}{\partial W^{l}} = \delta^{l} (a^{l-1})^{\top} \quad \text{(BP4)}"
        )
        if net.l2:
            lines.append(
                rf"\text{{with the L2 term: }} \frac{{\partial E}}{{\partial W^{{l}}}} = "
                rf"\frac{{\partial C}}{{\partial W^{{l}}}} + {latex_name('l2')} W^{{l}}"
            )
        if mean:
            lines.append(
                r"C = \frac{1}{m} \sum_{x} C_{x}: \text{ the per-sample gradients are averaged"
                r" over the batch, } \tfrac{1}{m} \text{ applied once}"
            )
        return lines
    scale = r"\frac{1}{m}" if mean else ""
    if fused:
        pred = loss.latex_prediction.format(z="Z_{L}")
        lines.append(
            rf"G_{{L}} = \bar{{Z}}_{{L}} = {scale}\left(A_{{L}} - T\right),"
            rf" \quad A_{{L}} = {pred}, \quad \text{{$L = {depth}$ layers}}"
        )
    elif act == "identity":
        lines.append(
            rf"G_{{L}} = \bar{{Z}}_{{L}} = {scale}\left(A_{{L}} - T\right),"
            rf" \quad \text{{$L = {depth}$ layers}}"
        )
    else:
        lines.append(
            rf"G_{{L}} = \bar{{Z}}_{{L}} = {scale}\left(A_{{L}} - T\right) \odot"
            rf" \sigma'(Z_{{L}}), \quad \text{{$L = {depth}$ layers}}"
        )
    lines.append(r"G_{l} = \bar{Z}_{l} = \left(G_{l+1} W_{l+1}^{\top}\right) \odot \sigma'(Z_{l})")
    decay = rf" + {latex_name('l2')} W_{{l}}" if net.l2 else ""
    lines.append(rf"\bar{{W}}_{{l}} = A_{{l-1}}^{{\top}} G_{{l}}{decay}, \quad A_{{0}} = X")
    lines.append(r"\bar{b}_{l} = \mathbf{1}^{\top} G_{l}")
    return lines


def naive_section(
    derivation: Derivation,
    pr: Printers,
    timeout: float = DEFAULT_TIMEOUT,
    limit: str | None = None,
) -> dict:
    """The expanded loss and its ``sympy.diff`` gradients, for scalar Programs; else why not.

    The expansion's size is estimated first (a loss too large to print is not expanded), and
    the rest runs under ``timeout`` in a child process (:mod:`symbp.limits`); a section cut by
    the limit says so, and its ``skipped`` names it in one line (``limit`` describes the limit).
    """
    program = derivation.program
    forward = program.forward_eqns
    scalar = all(not program.vars[n].shape for n in program.vars) and all(
        e.op == "ewise" for e in forward
    )
    if not scalar:
        size = sum(
            _entries(program.vars[p].shape)
            for p in program.params
            if _entries(program.vars[p].shape)
        )
        return {
            "omitted": (
                "The naive derivation (the loss expanded into one scalar expression per entry "
                f"and differentiated by sympy.diff) is omitted: the model has {size} parameter "
                "entries and a batch of m samples, so the expanded loss and its gradients would "
                "fill many pages."
            )
        }
    env: dict[sympy.Symbol, sympy.Expr] = {}
    for eqn in forward:
        env[sympy.Symbol(eqn.out)] = eqn.attr("expr").xreplace(env)
    loss = env[sympy.Symbol(program.loss)]
    written = written_size(loss)
    if written > NAIVE_MAX_NODES:
        return {
            "omitted": (
                "The naive derivation is omitted: written out, the loss alone has "
                f"{written:,} nodes (more than {NAIVE_MAX_NODES:,}), and its gradients more."
            )
        }
    outcome = run_stages(
        lambda emit: emit("naive", _naive_expressions(derivation, pr, loss)), timeout
    )
    if "naive" not in outcome.results:
        limit = limit or f"the time limit of {timeout:g} s (--timeout)"
        return {
            "omitted": f"The naive derivation is omitted: it did not finish within {limit}.",
            "skipped": [f"naive derivation skipped: over {limit}"],
        }
    return outcome.results["naive"]


NAIVE_MAX_NODES = 2000
"""The largest expanded loss, in nodes of its written-out tree, whose naive derivation is
printed: more would fill pages, and SymPy would take long to differentiate it."""


def _naive_expressions(derivation: Derivation, pr: Printers, loss: sympy.Expr) -> dict:
    program = derivation.program
    grads = [(p, sympy.diff(loss, sympy.Symbol(p))) for p in program.params]
    replacements, reduced = sympy.cse([g for _, g in grads], symbols=sympy.numbered_symbols("c"))
    cse_names = {s: rf"c_{{{s.name[1:]}}}" for s, _ in replacements}
    names = {n: atom(backward_latex_name(n, program)) for n in program.vars}
    names.update({s.name: v for s, v in cse_names.items()})
    cse_pr = LatexPrinters(derivation.functions, names, frozenset())
    return {
        "omitted": "",
        "loss": rf"{latex_name(program.loss)} &= {pr.latex(loss)}",
        "grads": [
            rf"\frac{{\partial {latex_name(program.loss)}}}{{\partial {latex_name(p)}}} &= "
            + pr.latex(g)
            for p, g in grads
        ],
        "cse": [rf"{cse_names[s]} &= {cse_pr.latex(e)}" for s, e in replacements],
        "reduced": [
            rf"\frac{{\partial {latex_name(program.loss)}}}{{\partial {latex_name(p)}}} &= "
            + cse_pr.latex(r)
            for (p, _), r in zip(grads, reduced, strict=True)
        ],
    }


def _entries(shape) -> int:
    total = 1
    for d in shape:
        if not isinstance(d, int):
            return 0
        total *= d
    return total


def cost_table(
    derivation: Derivation, timeout: float = DEFAULT_TIMEOUT, limit: str | None = None
) -> dict | None:
    """The report's cost table and how it was counted, escaped for the document, with
    ``skipped``: a line for each part the time limit cut.

    A report that fails leaves a sentence saying so (the derivation is still useful), never a
    silently missing section.
    """
    try:
        cost = latex_cost(derivation, timeout, limit)
    except Exception as err:  # the document must still be written
        message = f"The cost table could not be computed: {type(err).__name__}: {err}"
        return {"rows": [], "notes": [escape_text(message)], "skipped": []}
    return {
        "rows": [[escape_text(str(c)) for c in row] for row in cost["rows"]],
        "notes": [escape_text(n) for n in cost["notes"]],
        "skipped": cost["skipped"],
    }


def figure_file(derivation: Derivation) -> str:
    """The computation graph's PDF, which the document includes from its own directory."""
    return f"{derivation.model.name}-graph.pdf"


def figure(derivation: Derivation) -> dict:
    """The model section's figure: the file, its caption, and the note shown without it."""
    name = figure_file(derivation)
    return {
        "file": name,
        "caption": (
            "The computation graph of the forward pass: inputs (rounded boxes), parameters "
            "(filled boxes), constants (dashed boxes) and computed values (ellipses), each "
            "with its shape, and the assignments (small boxes) that compute them."
        ),
        "missing": escape_text(
            f"The picture of the computation graph is missing: symbp latex writes it next to "
            f"this file as {name} when Graphviz is installed (apt-get install graphviz)."
        ),
    }


def context(
    derivation: Derivation,
    notation: str = "seed003",
    timeout: float = DEFAULT_TIMEOUT,
    hvp: bool = False,
) -> dict:
    """The template's values. The naive section and the cost table share ``timeout``; the
    parts they leave out for it are listed under ``skipped``. ``hvp`` adds the section on
    the Hessian-vector product (:mod:`symbp.emit.latex_hvp`)."""
    deadline = time.monotonic() + timeout
    program = derivation.program
    pr = printers_for(derivation)
    rows = []
    for group, names in (
        ("input", program.inputs),
        ("parameter", program.params),
        ("constant", program.consts),
    ):
        for n in names:
            var = program.vars[n]
            extra = "" if var.default is None else f" = {var.default:g}"
            rows.append([f"${latex_name(n)}{extra}$", group, f"${_shape_tex(var.shape)}$"])
    forward = [
        {
            "lhs": latex_name(e.out),
            "rhs": _eqn_tex(e, pr),
            "shape": _shape_tex(program.shape(e.out)),
        }
        for e in program.forward_eqns
    ]
    values = {
        "marker": "Generated by symbp",
        "title": escape_text(derivation.model.name),
        "description": escape_text(" ".join(derivation.model.description.split())),
        "name": escape_text(derivation.model.name),
        "figure": figure(derivation),
        "rows": rows,
        "forward": forward,
        "loss": latex_name(program.loss),
        "steps": backward_steps(derivation, pr),
        "grads": [
            (latex_name(p), backward_latex_name(g, program)) for p, g in program.grads.items()
        ],
        "matrix": network_matrix_form(derivation, notation),
        "notation": notation,
        "hvp": hvp_section(derivation) if hvp else None,
    }
    limit = f"the time limit of {timeout:g} s (--timeout)"
    naive = naive_section(derivation, pr, timeout, limit)
    cost = cost_table(derivation, max(deadline - time.monotonic(), 0.0), limit)
    values["naive"], values["cost_table"] = naive, cost
    values["skipped"] = naive.get("skipped", []) + (cost or {}).get("skipped", [])
    return values


def render_latex(
    derivation: Derivation,
    notation: str = "seed003",
    timeout: float = DEFAULT_TIMEOUT,
    hvp: bool = False,
) -> str:
    """The complete ``.tex`` document for a derivation, under symbp's header line
    (deterministic, unless the time limit cuts a part)."""
    return latex_document(derivation, notation, timeout, hvp)[0]


def latex_document(
    derivation: Derivation,
    notation: str = "seed003",
    timeout: float = DEFAULT_TIMEOUT,
    hvp: bool = False,
) -> tuple[str, list[str]]:
    """The document and one line for each part the time limit left out of it."""
    values = context(derivation, notation, timeout, hvp)
    return stamp_text(render("derivation.tex.j2", values, "latex"), "%"), values["skipped"]


def markdown(derivation: Derivation) -> str:
    """The forward and backward equations as Markdown with MathJax, for Jupyter."""
    ctx = context(derivation)
    forward = r" \\ ".join(f"{eq['lhs']} &= {eq['rhs']}" for eq in ctx["forward"])
    backward = r" \\ ".join(
        f"{step['name']} &= {step['lines'][-1]}" for step in ctx["steps"] if step["lines"]
    )
    return (
        f"**{derivation.model.name}**: forward pass\n\n"
        f"$$\\begin{{aligned}} {forward} \\end{{aligned}}$$\n\n"
        "backward pass (adjoints $\\bar{v} = \\partial "
        f"{ctx['loss']} / \\partial v$)\n\n"
        f"$$\\begin{{aligned}} {backward} \\end{{aligned}}$$\n"
    )
