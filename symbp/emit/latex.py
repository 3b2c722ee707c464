"""The backprop derivation as a LaTeX document: sections of verified lines, then the template.

Every displayed equation is a :class:`~symbp.ir.display.Line`: its sides are SymPy expressions
(each op's record gives its forward form and its share of an adjoint as one), its LaTeX is
printed from them, and :func:`lines` hands them all to the line verifier
(:mod:`symbp.analysis.lines`). The template only loops and prints.

Another part of symbp may add a section of its own, verified like the rest: a function that
takes the :class:`Writer` and returns a :class:`Section` (or None), passed in ``sections=`` to
:func:`document`, :func:`render_latex` or :func:`latex_document`. It builds its lines with
``writer.equation(sides, …)`` from the names and nodes of :mod:`symbp.ir.display`; a side may
use symbols a line ``defines`` (with their values) earlier in the document.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import sympy

from symbp.analysis.redundancy import latex_cost
from symbp.derivation import Derivation
from symbp.emit import latex_naive, latex_seeds
from symbp.emit.latex_names import escape_text
from symbp.emit.latex_notation import DEFAULT, Notation, notation_for
from symbp.emit.latex_writer import Block, Section, SectionBuilder, Writer
from symbp.emit.printing import LatexPrinters
from symbp.emit.templating import render
from symbp.ir import display as d
from symbp.ir.display import Line
from symbp.ir.ops import OPS
from symbp.ir.program import Eqn, Program, active_values, dim_expr
from symbp.limits import DEFAULT_TIMEOUT
from symbp.provenance import stamp_text


@dataclass
class Document:
    derivation: Derivation
    notation: Notation
    sections: list[Section]
    skipped: list[str]
    cost: dict | None

    def lines(self) -> list[Line]:
        """Every displayed line, in the order the document shows them."""
        return [line for s in self.sections for b in s.blocks for line in b.lines]


def printers_for(derivation: Derivation, notation: str = DEFAULT) -> LatexPrinters:
    """The printers a document of ``derivation`` in ``notation`` is printed with."""
    return Writer(derivation, notation_for(derivation, notation)).pr


# ---- the model --------------------------------------------------------------------------------


def _shape_tex(shape) -> str:
    if not shape:
        return r"\text{scalar}"
    return r" \times ".join(sympy.latex(dim_expr(d)) for d in shape)


def _size_note(program: Program) -> str:
    dims = program.dims()
    if not dims:
        return ""
    named = ", ".join(f"${sympy.latex(dim_expr(d))}$" for d in dims)
    batch = " ($m$ counts the samples of a batch)" if "m" in dims else ""
    plural = "s" if len(dims) > 1 else ""
    return f"The size{plural} {named}{batch} may be any positive integer{plural}."


def model_section(w: Writer) -> Section:
    program = w.program
    section = Section("The model")
    picture = figure(w.derivation)
    section.text(
        "\\begin{figure}[H]\n\\centering\n"
        f"\\IfFileExists{{{picture['file']}}}{{\\includegraphics[width=\\linewidth,"
        f"height=0.4\\textheight,keepaspectratio]{{{picture['file']}}}}}"
        f"{{\\fbox{{\\parbox{{0.9\\linewidth}}{{{picture['missing']}}}}}}}\n"
        f"\\caption{{{picture['caption']}}}\n\\end{{figure}}"
    )
    rows = [["name", "role", "shape"]]
    for group, names in (
        ("input", program.inputs),
        ("parameter", program.params),
        ("constant", program.consts),
    ):
        for n in names:
            var = program.vars[n]
            extra = "" if var.default is None else f" = {var.default:g}"
            rows.append([f"${w.name(n)}{extra}$", group, f"${_shape_tex(var.shape)}$"])
    section.blocks.append(Block(table=rows, columns="lll"))
    note = _size_note(program)
    section.text(
        (note + " " if note else "")
        + r"\noindent The forward pass, one assignment per line in topological order:"
    )
    lines = []
    for eqn in program.forward_eqns:
        if eqn.out in w.notation.hidden:
            continue
        rhs = OPS[eqn.op].display(list(eqn.args), dict(eqn.attrs), _shapes(program, eqn))
        lines.append(
            w.equation([sympy.Symbol(eqn.out), rhs], tail=_shape_tex(program.shape(eqn.out)))
        )
    section.show(lines)
    return section


def _shapes(program: Program, eqn: Eqn) -> list:
    return [program.shape(a) for a in eqn.args]


# ---- the backward pass ----------------------------------------------------------------------


def _active(program: Program) -> set[str]:
    depends, reaches = active_values(program.forward_eqns, program.params, program.loss)
    return depends & reaches


def inlined(w: Writer) -> dict[sympy.Symbol, sympy.Expr]:
    """Backward values that are the code's temporaries (σ(H) computed once, a softmax), by
    their definitions: the mathematics writes them out. A temporary whose definition would
    print with another rank (a new axis) keeps its name."""
    program, adjoints = w.program, w.notation.adjoints
    ranks = program.ranks()
    inline: dict[sympy.Symbol, sympy.Expr] = {}
    for eqn in program.backward_eqns:
        if eqn.out in adjoints:
            continue
        expr = OPS[eqn.op].display(list(eqn.args), dict(eqn.attrs), _shapes(program, eqn))
        expr = expr.xreplace(inline)
        if d.rank(expr, ranks) == len(program.shape(eqn.out)):
            inline[sympy.Symbol(eqn.out)] = expr
    return inline


def _code(w: Writer, eqn: Eqn, inline: dict) -> sympy.Expr:
    """The assignment the generated code makes, as mathematics."""
    program = w.program
    return (
        OPS[eqn.op]
        .display(list(eqn.args), dict(eqn.attrs), _shapes(program, eqn))
        .xreplace(inline)
    )


def _distinct(w: Writer, sides: list[sympy.Basic]) -> list[sympy.Basic]:
    """The sides without a repeat of one that prints the same."""
    seen: set[str] = set()
    out = []
    for side in sides:
        tex = w.tex(side)
        if tex not in seen:
            seen.add(tex)
            out.append(side)
    return out


def _share(w: Writer, child: Eqn, value: str) -> tuple[sympy.Expr | None, sympy.Expr]:
    """``value``'s share of its adjoint through ``child``, from the op's record, summed over
    every argument position where ``value`` stands."""
    named, product = [], []
    for i, arg in enumerate(child.args):
        if arg == value:
            n, p = OPS[child.op].display_adjoint(child, i, w.program)
            named.append(n)
            product.append(p)
    whole_named = None if any(n is None for n in named) else sympy.Add(*named)
    return whole_named, sympy.Add(*product)


def backward_section(w: Writer) -> Section:
    program = w.program
    notation = w.notation
    section = Section("The backward pass, step by step")
    loss = sympy.Symbol(program.loss)
    section.text(
        rf"Reverse mode seeds the loss's adjoint with $\bar{{{notation.loss}}} = 1$"
        if program.loss not in notation.bars
        else rf"Reverse mode seeds the loss's adjoint with ${w.tex(d.Bar(loss))} = 1$"
    )
    section.blocks[-1].text += (
        " and gives every value on a path from a parameter to the loss the sum over its "
        r"children $j \in \mathrm{Ch}(i)$: "
        r"$\bar{v}_i = \sum_{j \in \mathrm{Ch}(i)} \bar{v}_j \, \partial v_j / \partial v_i$ "
        r"(seed 004), where $\partial v_j / \partial v_i$ is the derivative of $v_j$'s own "
        "assignment. Each step then writes the same sum by the functions' names, as the "
        "product it is, and last as the assignment the generated code makes."
    )
    active = _active(program)
    forward = program.forward_eqns
    order = [e.out for e in reversed(forward) if e.out in active] + [
        p for p in program.params if p in active
    ]
    producer = {e.out: e for e in program.backward_eqns}
    inline = inlined(w)
    index_shown = False
    for value in order:
        v = sympy.Symbol(value)
        if value == program.loss:
            section.show([w.equation([d.Bar(v), sympy.Integer(1)])])
            continue
        children = [e for e in forward if e.out in active and value in e.args]
        chain, named, products, throughs = [], [], [], []
        for child in children:
            term = d.ChainTerm(sympy.Symbol(child.out), v)
            n, p = _share(w, child, value)
            chain.append(term)
            named.append(n if n is not None else p)
            products.append(p)
            if len(children) > 1:
                lhs = "{" + notation.bar(value) + "}^{(" + w.name(child.out) + ")}"
                shown = _distinct(w, [term, *([n] if n is not None else []), p])
                throughs.append(w.equation([term, *shown], lhs=lhs))
        sides: list[sympy.Basic] = [d.Bar(v), d.plus(*chain), d.plus(*named), d.plus(*products)]
        final = program.grads.get(value, "d" + value)
        if final == "d" + value and final in producer:
            sides.append(_code(w, producer[final], inline))
        elif final in producer:
            sides.append(sympy.Symbol(final).xreplace(inline))
        lines = [*throughs, w.equation(_distinct(w, sides))]
        section.show(lines)
        if not index_shown:
            index = index_step(w, value, children)
            if index is not None:
                section.blocks += index
                index_shown = True
    section.text(r"\noindent The gradients:")
    section.show(
        [
            w.equation([d.Deriv(loss, sympy.Symbol(p)), sympy.Symbol(g).xreplace(inline)])
            for p, g in program.grads.items()
        ],
        numbered=False,
    )
    return section


def index_step(w: Writer, value: str, children: list[Eqn]) -> list[Block] | None:
    """Seed 000's index-level step, once, at the first matrix product met going backward:
    ∂J/∂A_ij = Σ_{r,k} C̄_rk ∂C_rk/∂A_ij, what the entries of the product make of it, and the
    matrix product that collects them (which is why a transpose appears)."""
    program = w.program
    for child in children:
        if child.op not in ("matmul", "affine") or child.attr("ta") or child.attr("tb"):
            continue
        a, b = child.args[:2]
        if (a == value) == (b == value) or len(program.shape(a)) != 2:
            continue
        rank_b = len(program.shape(b))
        if rank_b not in (1, 2):
            continue
        return _index_lines(w, child, value, rank_b)
    return None


def _index_lines(w: Writer, child: Eqn, value: str, rank_b: int) -> list[Block]:
    program = w.program
    a, b = (sympy.Symbol(x) for x in child.args[:2])
    c, g = sympy.Symbol(child.out), d.Bar(sympy.Symbol(child.out))
    i, j, r, k = sympy.symbols("i j r k")
    rows, inner = (dim_expr(x) for x in program.shape(child.args[0]))
    E = d.Entry
    if rank_b == 2:
        cols = dim_expr(program.shape(child.args[1])[1])
        c_index, c_ranges = (r, k), ((r, rows), (k, cols))
        if child.args[0] == value:  # C_rk = Σ_q A_rq B_qk: ∂C_rk/∂A_ij = I_ri B_jk
            x, x_index, x_ranges = a, (i, j), ((i, rows), (j, inner))
            local = d.times(d.Ident(r, i), E(b, j, k))
            collapsed = d.IndexSum(d.times(E(g, i, k), E(b, j, k)), k, cols)
            matrix = d.MatProd(g, d.Tr(b))
        else:  # ∂C_rk/∂B_ij = A_ri I_kj
            x, x_index, x_ranges = b, (i, j), ((i, inner), (j, cols))
            local = d.times(E(a, r, i), d.Ident(k, j))
            collapsed = d.IndexSum(d.times(E(a, r, i), E(g, r, j)), r, rows)
            matrix = d.MatProd(d.Tr(a), g)
    else:
        c_index, c_ranges = (r,), ((r, rows),)
        if child.args[0] == value:  # c_r = Σ_q A_rq b_q: ∂c_r/∂A_ij = I_ri b_j
            x, x_index, x_ranges = a, (i, j), ((i, rows), (j, inner))
            local = d.times(d.Ident(r, i), E(b, j))
            collapsed = d.times(E(g, i), E(b, j))
            matrix = d.MatProd(g, d.Tr(b))
        else:  # ∂c_r/∂b_j = A_rj
            x, x_index, x_ranges = b, (j,), ((j, inner),)
            local = E(a, r, j)
            collapsed = d.IndexSum(d.times(E(a, r, j), E(g, r)), r, rows)
            matrix = d.MatProd(d.Tr(a), g)
    entry_c, entry_x = E(c, *c_index), E(x, *x_index)
    total = d.times(E(g, *c_index), d.LocalDeriv(entry_c, entry_x))
    for index, size in reversed(c_ranges):
        total = d.IndexSum(total, index, size)
    single = len([e for e in program.forward_eqns if value in e.args]) == 1
    left = (
        d.Deriv(sympy.Symbol(program.loss), entry_x) if single else E(d.ChainTerm(c, x), *x_index)
    )
    lines = [
        w.equation([d.LocalDeriv(entry_c, entry_x), local], indices=(*c_ranges, *x_ranges)),
        w.equation([left, total, collapsed, E(matrix, *x_index)], indices=x_ranges),
    ]
    intro = (
        rf"Where the transpose in ${w.tex(d.ChainTerm(c, x))} = {w.tex(matrix)}$ comes from, "
        rf"entry by entry (seed 000): ${w.tex(entry_c)}$ depends on ${w.tex(entry_x)}$ as "
        r"the product's entries say, with $I$ the identity,"
    )
    outro = (
        rf"so the entries collect into the matrix product ${w.tex(matrix)}$, of "
        rf"${w.tex(x)}$'s shape."
    )
    return [Block(text=intro), Block(lines=lines), Block(text=outro)]


# ---- the document ---------------------------------------------------------------------------


def how_to_read(w: Writer) -> Section:
    """The paragraph before everything: what bars, ⊙, ∘2, 𝟏 and the batch mean here."""
    program = w.program
    notation = w.notation
    loss = notation.loss
    parts = [
        rf"A bar marks an adjoint: $\bar{{v}} = \partial {loss} / \partial v$, the derivative "
        rf"of the loss ${loss}$ with respect to a value $v$, of $v$'s shape"
    ]
    if notation.key == "seed003" and notation.depth:
        parts[-1] += (
            r"; a layer's output $Z_{i}$ has the adjoint $G_{i} = \nabla_{Z_{i}} \ell$, as in "
            "seed 003"
        )
    parts[-1] += "."
    parts.append(
        r"$\bar{v}^{(j)}$ is the share of $\bar{v}$ that comes through the value $j$ "
        r"computed from $v$."
    )
    parts.append(
        r"Juxtaposition is the matrix product and $^{\top}$ the transpose; vectors are "
        r"columns, and $\mathbf{1}$ is a vector of ones (or an array of ones) of the size "
        r"its place needs. $\odot$ is the elementwise product and $(\cdot)^{\circ 2}$ the "
        r"elementwise square; a function of an array, a quotient of arrays and $\sigma'$ act "
        r"on each entry, and arrays of different shapes combine as NumPy broadcasts them (a "
        r"vector with a matrix: along each row)."
    )
    if "m" in program.dims():
        rows = (
            "rows of the inputs"
            if notation.key == "seed003"
            else "rows of the code's arrays (seed 002's batch form puts them in columns)"
        )
        parts.append(
            rf"The $m$ samples of a batch are the {rows}; the loss averages over them, so "
            r"$\frac{1}{m}$ appears once, where the loss is differentiated."
            if program.meta.get("reduction", "mean") == "mean"
            else rf"The $m$ samples of a batch are the {rows}; the loss sums over them."
        )
    parts.append(
        "Every displayed equation is kept with its sides as expressions, so that it can be "
        "checked: symbp's line verifier evaluates every side at random points (its tests do "
        "so for every example, in every notation)."
    )
    section = Section("How to read this", numbered=False)
    section.text(" ".join(parts))
    return section


def document(
    derivation: Derivation,
    notation: str = DEFAULT,
    timeout: float = DEFAULT_TIMEOUT,
    sections: Sequence[SectionBuilder] = (),
) -> Document:
    """All sections of the document, each a list of blocks of verified lines. The naive
    derivation and the cost table share ``timeout``; what they leave out is in ``skipped``."""
    deadline = time.monotonic() + timeout
    w = Writer(derivation, notation_for(derivation, notation))
    parts = [how_to_read(w), model_section(w), backward_section(w)]
    parts += [s for s in latex_seeds.sections(w) if s is not None]
    limit = f"the time limit of {timeout:g} s (--timeout)"
    naive, skipped = latex_naive.section(w, timeout, limit)
    parts.append(naive)
    parts += [s for s in (builder(w) for builder in sections) if s is not None]
    cost = cost_table(derivation, max(deadline - time.monotonic(), 0.0), limit)
    skipped += (cost or {}).get("skipped", [])
    if cost is not None:
        section = Section("Cost")
        if cost["rows"]:
            section.blocks.append(Block(table=cost["rows"], columns="lrr"))
        for note in cost["notes"]:
            section.text(note)
        parts.append(section)
    return Document(derivation, w.notation, parts, skipped, cost)


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


def _context(doc: Document) -> dict:
    derivation = doc.derivation
    sections = []
    for s in doc.sections:
        blocks = []
        for b in s.blocks:
            if b.table:
                blocks.append({"kind": "table", "rows": b.table, "columns": b.columns})
            elif b.lines:
                environment = "align" if b.numbered else "align*"
                lines = [ln.tex for ln in b.lines]
                blocks.append({"kind": "lines", "lines": lines, "environment": environment})
            elif b.text:
                blocks.append({"kind": "text", "text": b.text})
        command = ("subsection" if s.subsection else "section") + ("" if s.numbered else "*")
        sections.append({"title": s.title, "command": command, "blocks": blocks})
    return {
        "marker": "Generated by symbp",
        "title": escape_text(derivation.model.name),
        "description": escape_text(" ".join(derivation.model.description.split())),
        "name": escape_text(derivation.model.name),
        "sections": sections,
    }


def render_latex(
    derivation: Derivation,
    notation: str = DEFAULT,
    timeout: float = DEFAULT_TIMEOUT,
    sections: Sequence[SectionBuilder] = (),
) -> str:
    """The complete ``.tex`` document for a derivation, under symbp's header line
    (deterministic, unless the time limit cuts a part)."""
    return latex_document(derivation, notation, timeout, sections)[0]


def latex_document(
    derivation: Derivation,
    notation: str = DEFAULT,
    timeout: float = DEFAULT_TIMEOUT,
    sections: Sequence[SectionBuilder] = (),
) -> tuple[str, list[str]]:
    """The document and one line for each part the time limit left out of it."""
    doc = document(derivation, notation, timeout, sections)
    text = render("derivation.tex.j2", _context(doc), "latex")
    return stamp_text(text, "%"), doc.skipped


def markdown(derivation: Derivation) -> str:
    """The forward and backward equations as Markdown with MathJax, for Jupyter: each value's
    assignment, and each adjoint as the generated code computes it."""
    w = Writer(derivation, notation_for(derivation))
    forward = [ln for b in model_section(w).blocks for ln in b.lines]
    steps = [
        ln
        for b in backward_section(w).blocks
        for ln in b.lines
        if isinstance(ln.sides[0], d.Bar) and not ln.indices
    ]

    def row(line: Line) -> str:
        return f"{w.tex(line.sides[0])} &= {w.tex(line.sides[-1])}"

    rows_forward = r" \\ ".join(row(line) for line in forward)
    rows_backward = r" \\ ".join(row(line) for line in steps)
    return (
        f"**{derivation.model.name}**: forward pass\n\n"
        f"$$\\begin{{aligned}} {rows_forward} \\end{{aligned}}$$\n\n"
        "backward pass (adjoints $\\bar{v} = \\partial "
        f"{w.notation.loss} / \\partial v$)\n\n"
        f"$$\\begin{{aligned}} {rows_backward} \\end{{aligned}}$$\n"
    )
