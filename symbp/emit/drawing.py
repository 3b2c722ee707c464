"""Pictures of a derivation: its computation graph as DOT text, laid out and drawn by Graphviz.

The forward graph has a node per input, parameter, constant and computed value, and a small op
node per assignment. The backward graph adds an adjoint v̄ for every value on a path from a
parameter to the loss, and one edge per chain-rule term v̄ᵢ ← v̄ⱼ ∂vⱼ/∂vᵢ, labelled with that
term: a value used twice receives two edges (seed 004's w̄ ← z̄·x and w̄ ← R̄·w).

The ``graphviz`` package only writes DOT and runs the ``dot`` program, so the DOT text needs
nothing installed, and every other format needs Graphviz itself (``GraphvizMissing`` says so).
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field

import graphviz
import numpy as np
import sympy

from symbp.analysis.scalar import concrete_shape, concrete_sizes, scalarize
from symbp.derivation import Derivation
from symbp.emit.printing import Printers
from symbp.errors import SpecError
from symbp.files import OutputError
from symbp.ir.ops import OPS
from symbp.ir.program import Eqn, Program, active_values, shape_text, size_expr
from symbp.provenance import stamp_pdf, stamp_png, stamp_text, stamp_xml

FORMATS = ("svg", "png", "pdf", "dot")
LEVELS = ("values", "scalars")
MAX_SCALAR_NODES = 200
"""Above this many nodes a scalarized graph is a hairball; ``--level scalars`` refuses it."""
INSTALL_HINT = "install Graphviz (Debian/Ubuntu: apt-get install graphviz)"

_BAR = "\u0304"
"""COMBINING MACRON: w̄, as the seeds and the README write adjoints."""
_OVERLINE = "\u0305"
"""COMBINING OVERLINE, one per letter of a longer base, so that the bars join into one line."""

_STYLE = {
    "input": {"shape": "box", "style": "rounded", "color": "#444444"},
    "param": {"shape": "box", "style": "filled", "fillcolor": "#cfe2f3", "color": "#3d6a99"},
    "const": {"shape": "box", "style": "dashed", "color": "#777777"},
    "value": {"shape": "ellipse", "style": "filled", "fillcolor": "#f2f2f2"},
    "op": {
        "shape": "box",
        "style": "rounded,filled",
        "fillcolor": "white",
        "color": "#999999",
        "fontsize": "10",
        "height": "0.2",
        "margin": "0.05,0.02",
    },
    "adjoint": {"shape": "ellipse", "style": "filled", "fillcolor": "#fde3c8", "color": "#b45f06"},
    "gradient": {"shape": "box", "style": "filled", "fillcolor": "#fde3c8", "color": "#b45f06"},
}


class GraphvizMissing(OutputError):
    """``dot`` is not installed: only the DOT text can be written."""


@dataclass
class Picture:
    """Nodes and edges in drawing order; ``same_rank`` pairs a value with its adjoint."""

    title: str
    nodes: list[tuple[str, str, str]] = field(default_factory=list)
    """(id, HTML label, style key)"""
    edges: list[tuple[str, str, str, bool]] = field(default_factory=list)
    """(tail, head, label, backward): a backward edge is drawn from head to tail."""
    same_rank: list[tuple[str, str]] = field(default_factory=list)

    def node(self, node_id: str, lines: Iterable[str], style: str) -> None:
        first, *rest = lines
        label = html.escape(first) if style == "op" else f"<B>{html.escape(first)}</B>"
        label += "".join(f'<BR/><FONT POINT-SIZE="10">{html.escape(r)}</FONT>' for r in rest)
        self.nodes.append((node_id, label, style))


def bar(name: str) -> str:
    """An adjoint's name: ``w`` → w̄, ``W1`` → W̄1, ``loss`` → l̅o̅s̅s̅ (the bar over the base)."""
    base = re.match(r"[A-Za-z]+?(?=\d)|[A-Za-z]+|.", name)
    head = base.group() if base else name
    marks = _BAR if len(head) == 1 else _OVERLINE
    return "".join(c + marks for c in head) + name[len(head) :]


def format_of(path_suffix: str) -> str:
    """The picture format a file suffix names; anything else is refused before any work."""
    fmt = path_suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise OutputError(
            f"cannot draw a '{path_suffix}' file; name a .svg, .png, .pdf or .dot file"
        )
    return fmt


# ---------------------------------------------------------------- the Program's values


def _value_lines(program: Program, name: str) -> list[str]:
    var = program.vars[name]
    head = name if var.default is None else f"{name} = {var.default:g}"
    lines = [head, shape_text(var.shape)]
    if name == program.loss:
        lines.append("loss")
    return lines


def _style(program: Program, name: str) -> str:
    return program.vars[name].role


def values_picture(derivation: Derivation, *, backward: bool) -> Picture:
    """One node per value and one op node per forward assignment; with ``backward``, the
    adjoints of the active values and one edge per chain-rule term."""
    program = derivation.program
    printers = Printers(derivation.functions)
    picture = Picture(_title(derivation, backward, "values"))
    forward = program.forward_eqns
    for name in (*program.inputs, *program.params, *program.consts):
        picture.node(name, _value_lines(program, name), _style(program, name))
    for eqn in forward:
        op_id = f"op/{eqn.out}"
        picture.node(op_id, [_op_text(eqn, printers)], "op")
        picture.node(eqn.out, _value_lines(program, eqn.out), "value")
        for arg in eqn.reads:
            if arg in program.vars:
                picture.edges.append((arg, op_id, "", False))
        picture.edges.append((op_id, eqn.out, "", False))
    if not backward:
        return picture
    depends, reaches = active_values(forward, program.params, program.loss)
    active = depends & reaches
    order = [*(p for p in program.params if p in active), *(e.out for e in forward)]
    for name in order:
        if name not in active:
            continue
        lines = [bar(name), shape_text(program.shape(name))]
        if name == program.loss:
            lines[0] += " = 1"
        picture.node(f"bar/{name}", lines, "gradient" if name in program.params else "adjoint")
        picture.same_rank.append((name, f"bar/{name}"))
    for eqn in forward:
        if eqn.out not in active:
            continue
        for arg in eqn.args:
            if arg in active:
                term = contribution_text(eqn, arg, program, printers)
                picture.edges.append((f"bar/{arg}", f"bar/{eqn.out}", term, True))
    return picture


def _op_text(eqn: Eqn, printers: Printers) -> str:
    return OPS[eqn.op].text(list(eqn.args), dict(eqn.attrs), printers)


def _wrapped(text: str, expr: sympy.Expr) -> str:
    return f"({text})" if expr.is_Add or expr.could_extract_minus_sign() else text


def contribution_text(eqn: Eqn, arg: str, program: Program, printers: Printers) -> str:
    """The chain-rule term v̄ⱼ ∂vⱼ/∂vᵢ of ``arg`` through ``eqn``, as the code computes it."""
    g, out = bar(eqn.out), eqn.out
    attrs = dict(eqn.attrs)
    ta, tb = attrs.get("ta", False), attrs.get("tb", False)
    t = "ᵀ"
    if eqn.op == "ewise":
        expr = attrs["expr"]
        partial = sympy.diff(expr, sympy.Symbol(arg))
        if not expr.is_Symbol:
            partial = partial.subs(expr, sympy.Symbol(out))
        term = _times(g, partial, printers, hadamard=bool(program.shape(out)))
        if program.shape(arg) != program.shape(out):
            term = f"Σ ({term})"  # arg was broadcast over out: its adjoint sums the copies
        return term
    a, b = (*eqn.args, "", "")[:2]
    index = eqn.args.index(arg)
    if eqn.op == "matmul":
        if index == 0:
            return f"{g} {b}{'' if tb else t}" if not ta else f"{b}{t if tb else ''} {g}{t}"
        return f"{a}{'' if ta else t} {g}" if not tb else f"{g}{t} {a}{t if ta else ''}"
    if eqn.op == "affine":
        return (f"{g} {b}{t}", f"{a}{t} {g}", f"1{t} {g}")[index]
    if eqn.op == "outer":
        return (f"{g} {b}", f"{g}{t} {a}")[index]
    if eqn.op == "transpose":
        return f"{g}{t}"
    if eqn.op == "sum":
        return f"{g} 1"
    if eqn.op == "mean":
        return f"{g} 1 / {printers.text(size_expr(program.shape(arg)))}"
    if eqn.op == "sum_squares":
        return f"2 {g} {arg}"
    predictions = {
        "softmax_cross_entropy": f"softmax({a})",
        "sigmoid_binary_cross_entropy": f"sigmoid({a})",
        "squared_error": a,
    }
    if eqn.op in predictions:
        count = attrs.get("count")
        scale = "" if count is None else f" / {printers.text(count)}"
        return f"{g} ({predictions[eqn.op]} − {b}){scale}"
    return f"{g} ∂{out}/∂{arg}"


def _times(g: str, partial: sympy.Expr, printers: Printers, *, hadamard: bool) -> str:
    if partial == 1:
        return g
    if partial == -1:
        return f"−{g}"
    op = " ⊙ " if hadamard and not partial.is_Number else "·"
    return f"{g}{op}{_wrapped(printers.text(partial), partial)}"


# ---------------------------------------------------------------- the scalarized view


def scalars_picture(derivation: Derivation, *, backward: bool) -> Picture:
    """One node per entry at batch 1 (other named sizes 2), one op node per computed entry;
    refused above :data:`MAX_SCALAR_NODES` nodes."""
    program = derivation.program
    sizes = concrete_sizes(program, batch=1)
    leaves = (*program.inputs, *program.params, *program.consts)
    at_least = sum(int(np.prod(concrete_shape(program.shape(n), sizes))) for n in leaves)
    _refuse_above(derivation, at_least, sizes, "at least ")
    view = scalarize(program, sizes, program.forward_eqns, shared=True)
    definitions = [d for e in program.forward_eqns for d in view.definitions[e.out]]
    active: set[sympy.Symbol] = set()
    if backward:
        active = _active_entries(program, view.values, definitions)
    total = at_least + 2 * len(definitions) + len(active)
    _refuse_above(derivation, total, sizes, "")
    printers = Printers(derivation.functions)
    picture = Picture(_title(derivation, backward, "scalars", sizes))
    for name in leaves:
        var = program.vars[name]
        for entry in view.values[name].flat:
            text = entry.name if var.default is None else f"{entry.name} = {var.default:g}"
            picture.node(entry.name, [text], var.role)
    for entry, expr in definitions:
        op_id = f"op/{entry.name}"
        picture.node(op_id, [printers.text(expr)], "op")
        picture.node(entry.name, [entry.name], "value")
        for source in _sorted_symbols(expr):
            picture.edges.append((source.name, op_id, "", False))
        picture.edges.append((op_id, entry.name, "", False))
    if not backward:
        return picture
    params = {e for p in program.params for e in view.values[p].flat}
    for entry in [*(e for p in program.params for e in view.values[p].flat), *dict(definitions)]:
        if entry in active:
            picture.node(f"bar/{entry.name}", [bar(entry.name)], _adjoint_style(entry, params))
            picture.same_rank.append((entry.name, f"bar/{entry.name}"))
    for entry, expr in definitions:
        if entry not in active:
            continue
        for source in _sorted_symbols(expr):
            if source in active:
                partial = sympy.diff(expr, source)
                if not isinstance(expr, sympy.Symbol):
                    partial = partial.subs(expr, entry)
                term = _times(bar(entry.name), partial, printers, hadamard=False)
                picture.edges.append((f"bar/{source.name}", f"bar/{entry.name}", term, True))
    return picture


def _adjoint_style(entry: sympy.Symbol, params: set[sympy.Symbol]) -> str:
    return "gradient" if entry in params else "adjoint"


def _sorted_symbols(expr: sympy.Expr) -> list[sympy.Symbol]:
    return sorted(expr.free_symbols, key=lambda s: s.name)


def _active_entries(program: Program, values: dict, definitions: list) -> set[sympy.Symbol]:
    """Entries on a path from a parameter entry to the loss: the ones that get adjoints."""
    depends = {e for p in program.params for e in values[p].flat}
    for entry, expr in definitions:
        if depends & expr.free_symbols:
            depends.add(entry)
    reaches = set(np.asarray(values[program.loss]).flat)
    for entry, expr in reversed(definitions):
        if entry in reaches:
            reaches |= expr.free_symbols
    return depends & reaches


def _refuse_above(derivation: Derivation, count: int, sizes: dict, qualifier: str) -> None:
    if count > MAX_SCALAR_NODES:
        shown = ", ".join(f"{k} = {v}" for k, v in sizes.items()) or "no named sizes"
        raise SpecError(
            f"--level scalars would draw {qualifier}{count} nodes (one per entry, at {shown}), "
            f"more than the {MAX_SCALAR_NODES} a picture can show; draw --level values instead",
            where=derivation.model.source,
        )


# ---------------------------------------------------------------- DOT and rendering


def _title(derivation: Derivation, backward: bool, level: str, sizes: dict | None = None) -> str:
    passes = "forward and backward passes" if backward else "forward pass"
    title = f"{derivation.model.name}: {passes}"
    if level == "scalars":
        shown = ", ".join(f"{k} = {v}" for k, v in (sizes or {}).items())
        title += ", one node per entry" + (f" ({shown})" if shown else "")
    return title


def dot_source(
    derivation: Derivation,
    *,
    backward: bool = False,
    level: str = "values",
    titled: bool = True,
) -> str:
    """The picture as DOT text: deterministic, ordered as the Program is."""
    if level not in LEVELS:
        raise SpecError(f"unknown level '{level}'; use values or scalars")
    make = values_picture if level == "values" else scalars_picture
    picture = make(derivation, backward=backward)
    graph = graphviz.Digraph(derivation.model.name)
    graph.attr(rankdir="LR", nodesep="0.25", ranksep="0.35")
    graph.attr(fontname="Helvetica")
    if titled:
        graph.attr(label=picture.title, labelloc="t", fontsize="14")
    description = " ".join(derivation.model.description.split())
    if description:
        graph.attr(tooltip=description)
    graph.attr("node", fontname="Helvetica", fontsize="12", height="0.3")
    graph.attr("edge", fontname="Helvetica", fontsize="9", arrowsize="0.6")
    for node_id, label, style in picture.nodes:
        graph.node(node_id, label=f"<{label}>", **_STYLE[style])
    for tail, head, label, backward_edge in picture.edges:
        attrs = {"label": label} if label else {}
        if backward_edge:
            attrs.update(dir="back", color="#b45f06", fontcolor="#b45f06")
        graph.edge(tail, head, **attrs)
    for value, adjoint in picture.same_rank:
        # The adjoint in its value's column, below it (a flat edge orders a rank).
        pair = f"{_quoted(value)} -> {_quoted(adjoint)} [style=invis]"
        graph.body.append(f"\t{{rank=same; {pair}}}\n")
    return graph.source


def _quoted(node_id: str) -> str:
    return graphviz.quoting.quote(node_id)


def render(source: str, fmt: str) -> bytes:
    """DOT text as ``fmt``: the text itself for ``dot``, else Graphviz's drawing, marked as
    written by symbp (so that symbp may overwrite it later) and free of timestamps."""
    if fmt == "dot":
        # dot discards lines that begin with # (C preprocessor output), so the header is safe.
        return stamp_text(source).encode("utf-8")
    if shutil.which("dot") is None:
        raise GraphvizMissing(
            f"drawing a .{fmt} file needs Graphviz's dot program, which was not found; "
            f"{INSTALL_HINT}, or write a .dot file"
        )
    try:
        data = graphviz.pipe("dot", fmt, source.encode("utf-8"), quiet=True)
    except graphviz.ExecutableNotFound:
        raise GraphvizMissing(
            f"Graphviz's dot program could not be run; {INSTALL_HINT}, or write a .dot file"
        ) from None
    except graphviz.CalledProcessError as err:
        detail = (err.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise OutputError("Graphviz's dot failed" + (f": {detail[0]}" if detail else "")) from None
    if fmt == "png":
        return stamp_png(data)
    if fmt == "pdf":
        return stamp_pdf(_without_date(data))
    return stamp_xml(data.decode("utf-8")).encode("utf-8")


def draw(
    derivation: Derivation,
    fmt: str,
    *,
    backward: bool = False,
    level: str = "values",
    titled: bool = True,
) -> bytes:
    """The computation graph of ``derivation`` as the bytes of a ``fmt`` file."""
    return render(dot_source(derivation, backward=backward, level=level, titled=titled), fmt)


# ---------------------------------------------------------------- marking binary files


def _without_date(data: bytes) -> bytes:
    """The PDF without its creation date (cairo writes the time of the run), the
    cross-reference offsets moved to match, so that the same input gives the same bytes."""
    date = re.search(rb"/CreationDate \([^)]*\)\s*", data)
    return _pdf_splice(data, date.start(), date.end(), b"") if date else data


def _pdf_splice(data: bytes, start: int, end: int, new: bytes) -> bytes:
    """``data[start:end]`` replaced by ``new``, with every byte offset after it moved; the
    PDF unchanged if its cross-reference table is not the classic kind cairo writes."""
    tail = re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", data)
    if tail is None:
        return data
    xref = int(tail.group(1))
    table = re.match(rb"xref\s+(\d+) (\d+)\s+", data[xref:])
    if table is None or xref < end:
        return data
    delta = len(new) - (end - start)
    entries_at = xref + table.end()
    count = int(table.group(2))
    rows = data[entries_at : entries_at + 20 * count]
    fixed = bytearray()
    for i in range(count):
        row = rows[20 * i : 20 * i + 20]
        offset = int(row[:10])
        if row[17:18] == b"n" and offset >= end:
            offset += delta
        fixed += b"%010d" % offset + row[10:]
    out = data[:start] + new + data[end:entries_at] + bytes(fixed)
    out += data[entries_at + 20 * count : tail.start()]
    return out + b"startxref\n%d\n%%%%EOF\n" % (xref + delta)
