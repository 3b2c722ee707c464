"""Pictures of the computation graph: structure (nodes, edges, labels), not pixels.

The SVG that Graphviz draws is parsed back: each node's id and text lines, each edge's ends and
label. The DOT text is parsed without Graphviz for the test that simulates its absence.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from symbp import notebook
from symbp.cli import main
from symbp.derivation import derive
from symbp.emit import drawing
from symbp.front.spec import load, loads
from symbp.provenance import Provenance, provenance
from symbp.resources import example_specs
from tests.conftest import ROOT, network_spec

SEED004 = ROOT / "examples" / "logistic_l2.toml"
RESIDUAL = ROOT / "examples" / "residual_block.toml"
SVG = "{http://www.w3.org/2000/svg}"
THREE_LAYERS = network_spec(
    3, [(4, "tanh"), (4, "tanh"), (2, "identity")], "softmax_cross_entropy"
)


def svg_graph(svg: bytes) -> tuple[dict[str, list[str]], list[tuple[str, str, str]]]:
    """Node id → its text lines, and (tail, head, label) per edge, as Graphviz drew them."""
    root = ET.fromstring(svg)
    nodes, edges = {}, []
    for group in root.iter(f"{SVG}g"):
        kind = group.get("class")
        title = group.findtext(f"{SVG}title")
        texts = [t.text or "" for t in group.iter(f"{SVG}text")]
        if kind == "node":
            nodes[title] = texts
        elif kind == "edge":
            tail, head = title.split("->")
            edges.append((tail, head, " ".join(texts)))
    return nodes, edges


def picture(spec, *, backward: bool = False, level: str = "values"):
    derivation = derive(load(spec) if isinstance(spec, Path) else loads(spec))
    return svg_graph(drawing.draw(derivation, "svg", backward=backward, level=level))


def value_graph(nodes, edges) -> dict[str, set[str]]:
    """Each computed value's inputs, through its op node (the seed's picture without ops)."""
    into_op = defaultdict(set)
    for tail, head, _ in edges:
        if head.startswith("op/"):
            into_op[head].add(tail)
    return {head: into_op[tail] for tail, head, _ in edges if tail.startswith("op/")}


def adjoint_edges(edges) -> dict[str, list[str]]:
    """Adjoint → the labels of the chain-rule terms it receives."""
    received = defaultdict(list)
    for tail, head, label in edges:
        if tail.startswith("bar/"):
            received[tail.removeprefix("bar/")].append(label)
            assert head.startswith("bar/")
    return {k: sorted(v) for k, v in received.items()}


# ---------------------------------------------------------------- seed 004


def test_seed004_forward_has_the_seeds_shape():
    nodes, edges = picture(SEED004)
    values = {n for n in nodes if not n.startswith("op/")}
    assert values == {"x", "t", "w", "b", "lam", "z", "y", "L", "R", "E"}
    assert len([n for n in nodes if n.startswith("op/")]) == 5
    assert len(edges) == 15  # 10 arguments into op nodes, 5 op nodes into their values
    assert value_graph(nodes, edges) == {
        "z": {"x", "w", "b"},
        "y": {"z"},
        "L": {"y", "t"},
        "R": {"w"},
        "E": {"L", "R", "lam"},
    }
    assert nodes["w"] == ["w", "scalar"]
    assert nodes["lam"] == ["lam = 0.1", "scalar"]
    assert nodes["E"] == ["E", "scalar", "loss"]
    assert nodes["op/z"] == ["b + w*x"]
    assert nodes["op/y"] == ["sigmoid(z)"]


def test_seed004_backward_shows_both_contributions_to_w():
    nodes, edges = picture(SEED004, backward=True)
    adjoints = {n: lines for n, lines in nodes.items() if n.startswith("bar/")}
    assert sorted(adjoints) == sorted(f"bar/{v}" for v in ("w", "b", "z", "y", "L", "R", "E"))
    assert adjoints["bar/w"] == ["w\u0304", "scalar"]
    assert adjoints["bar/E"][0] == "E\u0304 = 1"
    assert len(nodes) == 22 and len(edges) == 22
    assert adjoint_edges(edges) == {
        "w": ["R\u0304·w", "z\u0304·x"],  # w̄ ← R̄·w and w̄ ← z̄·x: w is used twice
        "b": ["z\u0304"],
        "z": ["y\u0304·y*(1 - y)"],
        "y": ["L\u0304·(y - t)"],
        "L": ["E\u0304"],
        "R": ["E\u0304·lam"],
    }
    # The forward picture is unchanged inside the backward one.
    forward = picture(SEED004)
    assert value_graph(nodes, edges) == value_graph(*forward)


def test_seed004_scalars_level_is_its_values_level():
    """Every value of seed 004 is a scalar: one entry each, the same graph."""
    nodes, edges = picture(SEED004, backward=True, level="scalars")
    values, _ = picture(SEED004, backward=True)
    assert set(nodes) == set(values)
    assert adjoint_edges(edges)["w"] == ["R\u0304·w", "z\u0304·x"]


# ---------------------------------------------------------------- a residual graph


def test_residual_block_forward_and_backward():
    nodes, edges = picture(RESIDUAL)
    assert len(nodes) == 22 and len(edges) == 22
    graph = value_graph(nodes, edges)
    assert graph["H2"] == {"H1", "H2_tanh"}
    assert graph["H2_pre"] == {"H1", "W2", "b2"}
    assert nodes["H1"] == ["H1", "m x 5"]
    assert nodes["W2"] == ["W2", "5 x 5"]
    assert nodes["op/H1_pre"] == ["X W1 + 1 b1ᵀ"]

    nodes, edges = picture(RESIDUAL, backward=True)
    assert len([n for n in nodes if n.startswith("bar/")]) == 13
    received = adjoint_edges(edges)
    assert sum(map(len, received.values())) == 13
    # H1 reaches the loss along two paths: the skip connection and the tanh branch.
    assert received["H1"] == ["H\u03042", "H\u03042_pre W2ᵀ"]
    assert received["W3"] == ["H2ᵀ Z\u0304"]
    assert received["b1"] == ["1ᵀ H\u03041_pre"]
    assert "X" not in received and "T" not in received


# ---------------------------------------------------------------- a 3-layer network


def test_three_layer_network_draws_one_node_per_layer_value():
    nodes, edges = picture(THREE_LAYERS)
    values = {n for n in nodes if not n.startswith("op/")}
    assert values == {"X", "T", "W1", "b1", "W2", "b2", "W3", "b3"} | {
        "Z1",
        "A1",
        "Z2",
        "A2",
        "Z3",
        "L",
    }
    assert len(nodes) == 20 and len(edges) == 19
    assert value_graph(nodes, edges)["Z2"] == {"A1", "W2", "b2"}
    assert nodes["A2"] == ["A2", "m x 4"]

    nodes, edges = picture(THREE_LAYERS, backward=True)
    received = adjoint_edges(edges)
    assert len([n for n in nodes if n.startswith("bar/")]) == 12
    assert sum(map(len, received.values())) == 11
    assert received["A1"] == ["Z\u03042 W2ᵀ"]
    assert received["W1"] == ["Xᵀ Z\u03041"]
    assert received["Z1"] == ["A\u03041 ⊙ (1 - A1**2)"]


def test_scalars_level_draws_one_node_per_entry():
    nodes, edges = picture(ROOT / "examples" / "cs229_two_layer.toml", level="scalars")
    # Leaves X 3, T 1, W1 12, b1 4, W2 4, b2 1; Z1, A1 4 each, Z2 and L: one op node each.
    assert len(nodes) == 25 + 2 * 10
    assert nodes["W1_2_3"] == ["W1_2_3"]
    assert value_graph(nodes, edges)["Z1_0_3"] == {"X_0_0", "X_0_1", "X_0_2", "W1_0_3"} | {
        "W1_1_3",
        "W1_2_3",
        "b1_3",
    }


def test_scalars_level_refuses_a_large_model():
    result = CliRunner().invoke(
        main, ["graph", str(ROOT / "examples" / "mlp_digits.toml"), "--level", "scalars"]
    )
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "--level scalars would draw at least" in line
    assert "more than the 200" in line and "--level values" in line
    residual = CliRunner().invoke(
        main, ["graph", str(RESIDUAL), "--level", "scalars", "--backward", "-o", "x.dot"]
    )
    assert residual.exit_code == 2 and "would draw 240 nodes" in residual.output


# ---------------------------------------------------------------- formats and files


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.tex
@pytest.mark.parametrize("spec", example_specs(), ids=lambda p: p.stem)
def test_every_example_in_every_format(spec, tmp_path):
    derivation = derive(load(spec))
    names = set(derivation.program.vars) - {e.out for e in derivation.program.backward_eqns}
    for backward in (False, True):
        for fmt in drawing.FORMATS:
            out = tmp_path / f"{derivation.model.name}-{backward}.{fmt}"
            args = ["graph", str(spec), "-o", str(out), *(["--backward"] * backward)]
            result = CliRunner().invoke(main, args)
            assert result.exit_code == 0, result.output
            data = out.read_bytes()
            assert provenance(out.read_bytes()) is Provenance.OURS, (
                "symbp must verify its own picture"
            )
            if fmt == "png":
                width, height = png_size(data)
                assert 100 < width < 8000 and 100 < height < 8000
            elif fmt == "pdf":
                assert data.startswith(b"%PDF-")
                info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True)
                assert info.returncode == 0 and info.stderr == "", info.stderr
                assert re.search(r"^Pages:\s+1$", info.stdout, re.M)
                text = subprocess.run(
                    ["pdftotext", str(out), "-"], capture_output=True, text=True
                ).stdout
                assert derivation.program.loss in text.split()
            elif fmt == "svg":
                nodes, _ = svg_graph(data)
                assert names <= set(nodes)
            else:
                assert data.decode("utf-8").startswith("# symbp ")
        # Run again: symbp overwrites its own pictures without --force.
        assert CliRunner().invoke(main, args).exit_code == 0


@pytest.mark.parametrize("fmt", drawing.FORMATS)
def test_pictures_are_byte_identical_across_runs(fmt):
    first = drawing.draw(derive(load(RESIDUAL)), fmt, backward=True)
    if fmt == "pdf":
        assert b"/CreationDate" not in first  # cairo's timestamp is removed
    second = drawing.draw(derive(load(RESIDUAL)), fmt, backward=True)
    assert first == second


def test_default_output_and_refusals(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["graph", str(SEED004)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "generated" / "logistic_l2.svg").exists()
    foreign = tmp_path / "mine.png"
    foreign.write_bytes(b"my own picture")
    refused = CliRunner().invoke(main, ["graph", str(SEED004), "-o", str(foreign)])
    assert refused.exit_code == 2 and "--force" in refused.output
    assert foreign.read_bytes() == b"my own picture"
    forced = CliRunner().invoke(main, ["graph", str(SEED004), "-o", str(foreign), "--force"])
    assert forced.exit_code == 0 and png_size(foreign.read_bytes())
    jpeg = CliRunner().invoke(main, ["graph", str(SEED004), "-o", "x.jpg"])
    assert jpeg.exit_code == 2 and "name a .svg, .png, .pdf or .dot file" in jpeg.output
    assert not (tmp_path / "x.jpg").exists()


# ---------------------------------------------------------------- without Graphviz


def dot_graph(text: str) -> tuple[set[str], list[tuple[str, str, str]]]:
    """Nodes and (tail, head, label) edges of symbp's DOT text, read without Graphviz."""
    ident = r'"(?:[^"\\]|\\.)*"|[A-Za-z0-9_]+'
    unquote = lambda s: s[1:-1].replace('\\"', '"') if s.startswith('"') else s  # noqa: E731
    nodes, edges = set(), []
    for line in text.splitlines():
        if line.startswith("\t{rank=same"):
            continue
        edge = re.match(rf"\t({ident}) -> ({ident})(?: \[(.*)\])?$", line)
        if edge:
            if "style=invis" not in (edge.group(3) or ""):
                label = re.search(r'label="((?:[^"\\]|\\.)*)"', edge.group(3) or "")
                edges.append(
                    (unquote(edge.group(1)), unquote(edge.group(2)), label and label.group(1))
                )
            continue
        node = re.match(rf"\t({ident}) \[label=<", line)
        if node:
            nodes.add(unquote(node.group(1)))
    return nodes, edges


@pytest.fixture
def no_graphviz(monkeypatch):
    """``dot`` is not on PATH (the other programs still are)."""
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: None if cmd == "dot" else real(cmd))
    monkeypatch.setattr(
        drawing.graphviz,
        "pipe",
        lambda *a, **k: pytest.fail("Graphviz must not be run when dot is missing"),
    )


def test_dot_output_needs_no_graphviz(tmp_path, no_graphviz):
    out = tmp_path / "seed004.dot"
    result = CliRunner().invoke(main, ["graph", str(SEED004), "--backward", "-o", str(out)])
    assert result.exit_code == 0, result.output
    nodes, edges = dot_graph(out.read_text(encoding="utf-8"))
    assert len(nodes) == 22 and len(edges) == 22
    assert sorted(e[2] for e in edges if e[1] == "bar/z" and e[0] == "bar/w") == ["z\u0304·x"]
    assert ("bar/w", "bar/R", "R\u0304·w") in edges


def test_other_formats_say_what_to_install(tmp_path, no_graphviz):
    for fmt in ("svg", "png", "pdf"):
        out = tmp_path / f"seed004.{fmt}"
        result = CliRunner().invoke(main, ["graph", str(SEED004), "-o", str(out)])
        assert result.exit_code == 2
        (line,) = result.output.strip().splitlines()
        assert "apt-get install graphviz" in line and "write a .dot file" in line
        assert not out.exists()


def test_notebooks_without_graphviz_show_the_equations(no_graphviz):
    model = load(SEED004)
    assert notebook.svg(model) is None and notebook.svg(derive(model)) is None
    text = notebook.markdown(model)
    assert "<img" not in text and r"\bar{w} &= \bar{z} x + \lambda w" in text


@pytest.mark.tex
def test_document_without_graphviz_compiles_with_a_note(tmp_path, no_graphviz):
    out = tmp_path / "seed004.tex"
    result = CliRunner().invoke(main, ["latex", str(SEED004), "-o", str(out), "--pdf"])
    assert result.exit_code == 0, result.output
    assert "warning: no computation-graph figure" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed004.pdf", "seed004.tex"]
    text = subprocess.run(
        ["pdftotext", str(tmp_path / "seed004.pdf"), "-"], capture_output=True, text=True
    ).stdout
    assert "The picture of the computation graph is missing" in " ".join(text.split())


# ---------------------------------------------------------------- notebooks and the document


def test_notebooks_show_the_graph_beside_the_equations():
    import base64

    model = load(SEED004)
    nodes, edges = svg_graph(notebook.svg(model).encode("utf-8"))
    assert "bar/w" in nodes and len(edges) == 22
    assert svg_graph(notebook.svg(derive(model)).encode("utf-8"))[0] == nodes
    text = notebook.markdown(derive(model))
    image = re.match(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)" alt="', text)
    assert image and svg_graph(base64.b64decode(image.group(1)))[0] == nodes
    assert r"\bar{w} &= \bar{z} x + \lambda w" in text


@pytest.mark.tex
def test_document_opens_its_model_section_with_the_figure(tmp_path):
    out = tmp_path / "seed004.tex"
    result = CliRunner().invoke(main, ["latex", str(SEED004), "-o", str(out), "--pdf"])
    assert result.exit_code == 0, result.output
    figure = tmp_path / "logistic_l2-graph.pdf"
    assert figure.read_bytes().startswith(b"%PDF")
    assert provenance(figure.read_bytes()) is Provenance.OURS
    tex = out.read_text(encoding="utf-8")
    section = tex.index(r"\section{The model}")
    assert tex.index(r"\includegraphics", section) < tex.index(r"\begin{tabular}", section)
    text = subprocess.run(
        ["pdftotext", "-raw", str(tmp_path / "seed004.pdf"), "-"], capture_output=True, text=True
    ).stdout
    flat = " ".join(text.split())
    # The graph's own labels are in the compiled document, before the caption and the table.
    model = flat.index("1 The model")
    assert model < flat.index("sigmoid(z)") < flat.index("Figure 1: The computation graph")
    assert flat.index("Figure 1") < flat.index("parameter")


# ---------------------------------------------------------------- labels


def test_labels_are_escaped():
    spec = (
        'name = "esc"\ndescription = "a <b> & \\"quoted\\" description"\n[graph]\n'
        'inputs = { x = "scalar" }\nparams = { w = "scalar" }\n'
        'steps = ["cost = (w*x)**2"]\nloss = "cost"\n'
    )
    derivation = derive(loads(spec))
    source = drawing.dot_source(derivation, backward=True)
    assert 'tooltip="a <b> & \\"quoted\\" description"' in source
    nodes, _ = svg_graph(drawing.draw(derivation, "svg", backward=True))
    assert nodes["bar/cost"][0] == "c\u0305o\u0305s\u0305t\u0305 = 1"
    picture = drawing.Picture("t")
    picture.node("n", ["a<b", "x & y"], "value")
    assert picture.nodes[0][1] == '<B>a&lt;b</B><BR/><FONT POINT-SIZE="10">x &amp; y</FONT>'


@pytest.mark.parametrize(
    ("name", "barred"),
    [("w", "w\u0304"), ("W1", "W\u03041"), ("H1_pre", "H\u03041_pre"), ("Z", "Z\u0304")],
)
def test_adjoint_names(name, barred):
    assert drawing.bar(name) == barred
