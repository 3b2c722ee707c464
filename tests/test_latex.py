"""The LaTeX derivation: names, the document's equations, and that every example compiles.

The line verifier's own tests (every line of every document true, false lines caught) are in
``tests/test_latex_lines.py``; the seeds' statements in ``tests/test_latex_seeds.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import unicodedata
from pathlib import Path

import pytest
import sympy
from click.testing import CliRunner

from symbp import notebook
from symbp.ad.backprop import backprop
from symbp.cli import main
from symbp.cli.pdf import LatexError, compile_pdf
from symbp.derivation import Derivation, derive
from symbp.emit.latex import document, printers_for, render_latex
from symbp.emit.latex_names import backward_latex_name, escape_text, latex_name
from symbp.front.spec import Model, load, loads
from symbp.ir import display as d
from symbp.ir.builder import Builder
from symbp.ir.functions import builtin_table
from symbp.ir.program import Program, Var
from symbp.provenance import Provenance, provenance
from symbp.resources import example_specs
from tests.conftest import ROOT

# ---------------------------------------------------------------- helpers (other files too)


def compile_and_read(tex: str, directory: Path, stem: str = "doc") -> tuple[str, int, str]:
    """pdflatex -halt-on-error twice; the PDF's text (pdftotext -raw: in the order it was
    written, so that a superscript beside a fraction stays in its equation), its pages and
    the log."""
    (directory / f"{stem}.tex").write_text(tex, encoding="utf-8")
    for _ in range(2):
        run = subprocess.run(
            ["pdflatex", "-halt-on-error", "-interaction=nonstopmode", f"{stem}.tex"],
            cwd=directory,
            capture_output=True,
            text=True,
            errors="replace",
        )
        assert run.returncode == 0, run.stdout[-3000:]
    text = subprocess.run(
        ["pdftotext", "-raw", f"{stem}.pdf", "-"], cwd=directory, capture_output=True, text=True
    ).stdout
    info = subprocess.run(
        ["pdfinfo", f"{stem}.pdf"], cwd=directory, capture_output=True, text=True
    ).stdout
    pages = int(next(ln.split()[1] for ln in info.splitlines() if ln.startswith("Pages:")))
    log = (directory / f"{stem}.log").read_text(encoding="utf-8", errors="replace")
    return text, pages, log


def squeeze(text: str) -> str:
    """No whitespace, no control characters (pdftotext writes some for large brackets), and
    composed accents (pdftotext writes y + U+0304 for ȳ)."""
    kept = "".join(c for c in "".join(text.split()) if unicodedata.category(c) != "Cc")
    return unicodedata.normalize("NFC", kept)


def seed004(names: dict[str, str] | None = None) -> Derivation:
    """Seed 004's graph built directly on the Program; ``names`` renames its values."""
    n = {k: k for k in ("x", "t", "w", "b", "lam", "z", "y", "L", "R", "E")}
    n.update(names or {})
    functions = builtin_table()
    sigmoid = functions["sigmoid"].cls
    s = {k: sympy.Symbol(v) for k, v in n.items()}
    declared = {
        n["x"]: Var(n["x"], (), "input"),
        n["t"]: Var(n["t"], (), "input"),
        n["w"]: Var(n["w"], (), "param"),
        n["b"]: Var(n["b"], (), "param"),
        n["lam"]: Var(n["lam"], (), "const", default=0.1),
    }
    program = Program(
        "logistic_l2",
        declared,
        [],
        n["E"],
        inputs=[n["x"], n["t"]],
        params=[n["w"], n["b"]],
        consts=[n["lam"]],
    )
    build = Builder(program)
    build.ewise(s["w"] * s["x"] + s["b"], name=n["z"], exact_name=True)
    build.ewise(sigmoid(s["z"]), name=n["y"], exact_name=True)
    build.ewise((s["y"] - s["t"]) ** 2 / 2, name=n["L"], exact_name=True)
    build.ewise(s["w"] ** 2 / 2, name=n["R"], exact_name=True)
    build.ewise(s["L"] + s["lam"] * s["R"], name=n["E"], exact_name=True)
    program.meta["functions"] = functions
    model = Model(name="logistic_l2", description="Seed 004 by hand", source="<test>")
    return Derivation(model, backprop(program), None, functions)


def steps(derivation: Derivation) -> dict[str, list[str]]:
    """Each adjoint's line in the backward pass, as the LaTeX of its sides, by its name."""
    doc = document(derivation)
    pr = printers_for(derivation)
    section = next(s for s in doc.sections if s.title.startswith("The backward pass"))
    out = {}
    for block in section.blocks:
        for line in block.lines:
            if isinstance(line.sides[0], d.Bar) and not line.indices:
                out[pr.latex(line.sides[0])] = [pr.latex(side) for side in line.sides[1:]]
    return out


def check_seed004_document(derivation: Derivation, tmp_path: Path) -> None:
    """Seed 004's derivation: w̄ through z and through R, and z̄ = ȳ σ′(z); it compiles."""
    lines = steps(derivation)
    assert lines[r"\bar{w}"][0] == (
        r"\bar{z}\,\frac{\partial z}{\partial w} + \bar{R}\,\frac{\partial R}{\partial w}"
    )
    assert r"\bar{z} x + \bar{R} w" in lines[r"\bar{w}"]
    assert lines[r"\bar{w}"][-1] == r"\bar{z} x + \lambda w"
    assert lines[r"\bar{z}"][:2] == [
        r"\bar{y}\,\frac{\partial y}{\partial z}",
        r"\bar{y} \sigma'\left(z\right)",
    ]
    assert lines[r"\bar{E}"] == ["1"]
    assert lines[r"\bar{R}"][-1] == r"\bar{E} \lambda"
    tex = render_latex(derivation)
    text, _, _ = compile_and_read(tex, tmp_path)
    flat = squeeze(text)
    assert "w̄(z)=z̄∂z∂w=z̄x" in flat and "w̄(R)=R̄∂R∂w=R̄w" in flat
    assert "=ȳσ′(z)" in flat
    assert "=z̄x+λw" in flat
    for forward in ("z=b+wx", "y=σ(z)", "E=L+Rλ"):
        assert forward in flat


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "tex"),
    [
        ("W1", "W_{1}"),
        ("b_2", "b_{2}"),
        ("Z12", "Z_{12}"),
        ("x", "x"),
        ("lam", r"\lambda"),
        ("lambda", r"\lambda"),
        ("sigma", r"\sigma"),
        ("alpha", r"\alpha"),
        ("beta", r"\beta"),
        ("eta", r"\eta"),
        ("mu", r"\mu"),
        ("theta", r"\theta"),
        ("Sigma", r"\Sigma"),
        ("theta1", r"\theta_{1}"),
        ("alpha_2", r"\alpha_{2}"),
        ("w_lam", r"w_{\lambda}"),
        ("w_hidden_2", r"w_{\text{hidden\_2}}"),
        ("W_out", r"W_{\mathrm{out}}"),
        ("loss", r"\mathrm{loss}"),
        ("a&b", r"\text{a\&b}"),
        ("p%", r"\text{p\%}"),
        ("c$d", r"\text{c\$d}"),
        ("n#1", r"\text{n\#1}"),
        ("x{1}", r"\text{x\{1\}}"),
        ("x_{1}", r"x_{\text{\{1\}}}"),
        ("a~b", r"\text{a\textasciitilde{}b}"),
        ("a^b", r"\text{a\textasciicircum{}b}"),
        ("a\\b", r"\text{a\textbackslash{}b}"),
        ("_private", r"\text{\_private}"),
        ("z_p", "z'"),
        ("z_pp", "z''"),
        ("z_ppp", "z'''"),
        ("H1_p", "H_{1}'"),
        ("x_p1", r"x_{\text{p1}}"),
    ],
)
def test_latex_name(name, tex):
    assert latex_name(name) == tex


def test_a_primed_name_has_its_bar_over_the_whole_name():
    """z′'s adjoint is the bar over z′, not z̄ followed by a prime (which reads as z̄'s
    derivative): seed 001's z′ and z″ (spec names z_p, z_pp)."""
    assert latex_name("z_p", bar=True) == r"\overline{z'}"
    assert latex_name("z_pp", bar=True) == r"\overline{z''}"
    derivation = derive(load(ROOT / "examples" / "lee_backprop.toml"))
    assert r"\overline{z'}" in steps(derivation)
    assert backward_latex_name("dz_p", derivation.program) == r"\overline{z'}"


def test_adjoint_names():
    derivation = derive(load(ROOT / "examples" / "softmax_two_layer.toml"))
    program = derivation.program
    assert backward_latex_name("dZ1", program) == r"\bar{Z}_{1}"
    assert backward_latex_name("dW2", program) == r"\bar{W}_{2}"
    assert backward_latex_name("db_2", program) == r"\mathrm{db}_{2}"
    assert latex_name("lam", bar=True) == r"\bar{\lambda}"
    assert backward_latex_name("dw_R", seed004().program) == r"\bar{w}^{(R)}"


def test_escape_text_all_special_characters():
    assert escape_text("a_b&c%d$e#f{g}h~i^j\\k") == (
        r"a\_b\&c\%d\$e\#f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k"
    )
    assert escape_text("δᴸ − t, W₂ᵀ, λ") == (
        r"$\delta$\textsuperscript{L} $-$ t, W\textsubscript{2}$^{\top}$, $\lambda$"
    )


@pytest.mark.parametrize(
    ("name", "tex", "bar"),
    [
        ("H1_pre", r"H_{1,\mathrm{pre}}", r"\bar{H}_{1,\mathrm{pre}}"),
        ("H2_tanh", r"H_{2,\mathrm{tanh}}", r"\bar{H}_{2,\mathrm{tanh}}"),
        ("theta1_x", r"\theta_{1,x}", r"\bar{\theta}_{1,x}"),
    ],
)
def test_indexed_name_with_a_role(name, tex, bar):
    """The names graph lowering gives (residual_block's H1_pre) print as math, not as text
    with a visible underscore."""
    assert latex_name(name) == tex
    assert latex_name(name, bar=True) == bar


def test_escape_text_keeps_negated_relations():
    """≠ decomposes (NFD) into = and a combining overlay; dropping the overlay inverted it."""
    assert escape_text("x ≠ y") == r"x $\neq$ y"
    assert escape_text("a ÷ b, x ∉ S") == r"a $\div$ b, x $\notin$ S"
    assert "=" not in escape_text("a ≯ b")


# ---------------------------------------------------------------- documents


def test_document_is_deterministic_and_marked():
    derivation = derive(load(ROOT / "examples" / "mlp_digits.toml"))
    first = render_latex(derivation)
    assert first == render_latex(derive(load(ROOT / "examples" / "mlp_digits.toml")))
    assert re.fullmatch(r"% symbp 0\.1\.0 sha256:[0-9a-f]{64}", first.splitlines()[0])
    assert provenance(first.encode()) is Provenance.OURS
    assert str(ROOT) not in first


def test_the_document_opens_with_how_to_read_it():
    """Before anything else: bars are adjoints, ⊙ and ∘2 are elementwise, the batch's 1/m."""
    for stem, notation in (("mlp_digits", "seed003"), ("mlp_digits", "seed002")):
        doc = document(derive(load(ROOT / "examples" / f"{stem}.toml")), notation)
        first = doc.sections[0]
        assert first.title == "How to read this"
        text = first.blocks[0].text
        for needed in (r"\bar{v}", r"\odot", r"(\cdot)^{\circ 2}", r"\frac{1}{m}", "columns"):
            assert needed in text, needed
    seed003 = document(derive(load(ROOT / "examples" / "mlp_digits.toml"))).sections[0]
    assert r"G_{i} = \nabla_{Z_{i}} \ell" in seed003.blocks[0].text


def test_value_with_two_children_shows_each_contribution():
    """mlp_digits has l2: W1 feeds its layer and the regularizer; each share has a line."""
    tex = render_latex(derive(load(ROOT / "examples" / "mlp_digits.toml")))
    assert r"{\bar{W}_{1}}^{(U_{1})} &= \bar{U}_{1}\,\frac{\partial U_{1}}" in tex
    assert r"{\bar{W}_{1}}^{(R_{1})} &= \bar{R}_{1}\,\frac{\partial R_{1}}" in tex


def test_a_step_never_prints_the_same_side_twice():
    for spec in example_specs():
        for name, sides in steps(derive(load(spec))).items():
            assert len(sides) == len(set(sides)), (spec.stem, name, sides)


def test_names_do_not_clash_and_code_temporaries_stay_out():
    """The layer count is L only where the loss is not (ℓ, C); l2 prints as λ; elementwise
    squares print with ∘; no temporary of the code (dH_pre_1, Y_T for Wᵀ, S2) is a symbol of
    the mathematics."""
    for notation, loss in (("seed003", r"\ell"), ("seed002", "C")):
        doc = document(derive(load(ROOT / "examples" / "mlp_digits.toml")), notation)
        assert doc.notation.loss == "E" and doc.notation.names["L"] == loss
        tex = render_latex(derive(load(ROOT / "examples" / "mlp_digits.toml")), notation)
        assert "l_{2}" not in tex and r"\lambda" in tex
        assert "L = 2" in tex
    swish = render_latex(derive(load(ROOT / "examples" / "swish_regression.toml")))
    assert r"\left(p - y\right)^{\circ 2}" in swish
    assert r"\mathrm{dH}" not in swish and "pre\\_1" not in swish
    tied = render_latex(derive(load(ROOT / "examples" / "tied_autoencoder.toml")))
    assert "Y_{T}" not in tied and r"\overline{{W}^{\top}}" in tied
    softmax = render_latex(derive(load(ROOT / "examples" / "softmax_two_layer.toml")))
    assert "S_{2}" not in softmax


def test_the_index_level_step_is_shown_once():
    """Seed 000's ∂J/∂W_ij = Σ_k ∂J/∂z_k ∂z_k/∂W_ij at the first matrix product met going
    backward, once per document, in the document's layout."""
    for spec in example_specs():
        doc = document(derive(load(spec)))
        texts = [b.text for s in doc.sections for b in s.blocks]
        count = sum("entry by entry (seed 000)" in t for t in texts)
        matrices = any(
            e.op in ("matmul", "affine") for e in derive(load(spec)).program.forward_eqns
        )
        assert count == (1 if matrices else 0), spec.stem
    mlp = render_latex(derive(load(ROOT / "examples" / "mlp_digits.toml")))
    assert r"\frac{\partial E}{\partial (Z_{2})_{ij}} &= \sum_{r} \sum_{k}" in mlp
    assert r"&= \left(G_{3} {W_{2}}^{\top}\right)_{ij}" in mlp


@pytest.mark.tex
def test_seed004_by_hand(tmp_path):
    check_seed004_document(seed004(), tmp_path)


def test_naive_section_is_sympy_diff_of_the_seed004_loss():
    """The loss written by hand from seed 004, E = ½(σ(wx + b) − t)² + ½λw², differentiated
    here: the document's naive lines are these expressions (up to the marks), and its CSE
    lines give them back when the named subexpressions are substituted."""
    doc = document(seed004())
    section = next(s for s in doc.sections if s.title == "The naive derivation")
    lines = [line for b in section.blocks for line in b.lines]
    w, b, x, t, lam = sympy.symbols("w b x t lam")
    sigma = builtin_table()["sigmoid"].cls
    loss = (sigma(w * x + b) - t) ** 2 / 2 + lam * w**2 / 2

    def unmarked(expr):
        return expr.replace(lambda e: isinstance(e, d.Mark), lambda e: e.args[0])

    assert sympy.simplify(lines[0].sides[1] - loss) == 0
    written = [unmarked(line.sides[1]) for line in lines[3:5]]
    for g, p in zip(written, (w, b), strict=True):
        assert sympy.expand(g - sympy.diff(loss, p)) == 0
    cse = [line for line in lines if line.defines]
    assert [str(s) for line in cse for s, _ in line.defines] == ["c0", "c1"]
    tex = render_latex(seed004())
    assert r"c_{0} &= \sigma\left(b + w x\right)" in tex
    assert r"c_{1} &= c_{0} \left(1 - c_{0}\right) \left(c_{0} - t\right)" in tex
    assert r"\frac{\partial E}{\partial w} &= c_{1} x + \lambda w" in tex


def test_the_naive_section_marks_and_counts_as_seed004_does():
    """σ′ kept: b + wx written 4 times and (σ(wx + b) − t)σ′(wx + b) twice; σ′ written out:
    b + wx 6 times (seed 004, §2.1 and its margin note); each marked where it is written."""
    tex = render_latex(derive(load(ROOT / "examples" / "logistic_l2.toml")))
    kept, written = tex.split(r"With the derivatives written out")
    assert r"\text{(1) 4 times:}\quad & b + w x" in kept
    assert r"\text{(2) twice:}\quad & \left(\sigma\left(b + w x\right) - t\right)" in kept
    assert kept.count(r"\underbrace{b + w x}_{\text{1}}") == 4
    assert r"6 times:}\quad & b + w x" in written
    assert r"6 times:}\quad & \sigma\left(b + w x\right)" in written


def test_a_large_model_shows_one_entry_or_says_why_not():
    swish = document(derive(load(ROOT / "examples" / "swish_regression.toml")))
    naive = next(s for s in swish.sections if s.title == "The naive derivation")
    text = " ".join(b.text for b in naive.blocks)
    assert "26 parameter entries" in text and "only one entry's is shown" in text
    assert sum(len(b.lines) for b in naive.blocks) == 1  # σ′ kept; written out, counted
    assert "With the derivatives written out too, this one gradient has" in text
    mlp = document(derive(load(ROOT / "examples" / "mlp_digits.toml")))
    naive = next(s for s in mlp.sections if s.title == "The naive derivation")
    text = " ".join(b.text for b in naive.blocks)
    assert "not even one entry's gradient fits" in text and "2,410 parameter entries" in text
    assert re.search(r"about [\d,]+ operations", text)


@pytest.mark.parametrize("spec", example_specs(), ids=lambda p: p.stem)
def test_every_example_has_its_cost_table(spec):
    """The report's counts, the ratio of Theorem 1 and how they were counted; a report that
    fails would leave a sentence, never a silently missing section."""
    cost = document(derive(load(spec))).cost
    assert cost is not None and cost["rows"], cost
    rows = {row[0]: row[1:] for row in cost["rows"]}
    forward = int(rows["(a) forward, as the program computes it"][0])
    backprop_ops = int(rows["(d) backprop"][0])
    assert rows["forward and gradient, (a) + (d)"][0] == str(forward + backprop_ops)
    assert "could not be computed" not in " ".join(cost["notes"])
    if rows["(b) naive sympy.diff, per parameter entry"][0] == "--":
        assert "The naive columns are left out" in " ".join(cost["notes"])
    else:
        assert "the same functions" in " ".join(cost["notes"])


def test_seed004_cost_table_counts_by_hand():
    """Seed 004 counted on paper (see tests/test_redundancy.py): forward 10, naive 29, after
    CSE 10, backprop 7; then (e), the Hessian-vector product, counted in tests/test_hvp.py."""
    rows = document(seed004()).cost["rows"]
    assert [row[1] for row in rows[1:]] == ["10", "29", "10", "7", "17", "19"]
    assert [row[2] for row in rows[1:]] == ["1.00", "2.90", "1.00", "0.70", "1.70", "1.90"]


def test_jupyter_shows_the_seed004_equations():
    """A Derivation in Jupyter: the forward assignments and the seed's w̄ = z̄x + λw."""
    text = notebook.markdown(derive(load(ROOT / "examples" / "logistic_l2.toml")))
    assert r"z &= b + w x" in text
    assert r"\bar{w} &= \bar{z} x + \lambda w" in text
    assert r"\bar{z} &= \bar{y} y \left(1 - y\right)" in text
    assert text.count("$$") == 4


def test_jupyter_shows_a_model_as_its_equations():
    """The Model a user loads shows the same equations; one that cannot be derived says why."""
    model = load(ROOT / "examples" / "logistic_l2.toml")
    text = notebook.markdown(model)
    assert r"\bar{w} &= \bar{z} x + \lambda w" in text
    broken = loads(
        'name = "g"\n[graph]\nparams = { w = "scalar", v = "scalar" }\n'
        'steps = ["E = w**2"]\nloss = "E"\n'
    )
    assert "cannot be derived" in notebook.markdown(broken)
    assert "'v'" in notebook.markdown(broken)


def test_ipython_shows_models_and_derivations():
    """Imported inside IPython, symbp registers the views with the shell's display formatters."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    notebook.register(shell)
    model = load(ROOT / "examples" / "logistic_l2.toml")
    for shown in (model, derive(model)):
        data, _ = shell.display_formatter.format(shown)
        assert r"\bar{w} &= \bar{z} x + \lambda w" in data["text/markdown"]
        assert "<svg" in data["image/svg+xml"]


@pytest.mark.tex
def test_greek_and_special_names_compile(tmp_path):
    names = {"w": "w_hidden_2", "lam": "lam", "b": "beta", "L": "a&b%c", "R": "R$#~^", "E": "E{}"}
    derivation = seed004(names)
    tex = render_latex(derivation)
    assert r"w_{\text{hidden\_2}}" in tex
    assert r"\text{a\&b\%c}" in tex
    assert r"\beta" in tex and r"\lambda" in tex
    text, _, _ = compile_and_read(tex, tmp_path)
    flat = squeeze(text)
    assert "a&b%c" in flat and "R$#˜ˆ" in flat.replace("~", "˜").replace("^", "ˆ")
    assert "whidden2" in flat and "λ" in flat and "β" in flat


# ---------------------------------------------------------------- command line


@pytest.mark.tex
def test_cli_writes_tex_and_pdf(tmp_path):
    out = tmp_path / "two.tex"
    spec = str(ROOT / "examples" / "softmax_two_layer.toml")
    result = CliRunner().invoke(main, ["latex", spec, "-o", str(out), "--pdf"])
    assert result.exit_code == 0, result.output
    assert provenance(out.read_bytes()) is Provenance.OURS
    pdf = (tmp_path / "two.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and provenance(pdf) is Provenance.OURS
    # The document's computation-graph figure sits beside it, named after the model.
    figure = tmp_path / "softmax_two_layer-graph.pdf"
    assert provenance(figure.read_bytes()) is Provenance.OURS
    names = ["softmax_two_layer-graph.pdf", "two.pdf", "two.tex"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names


def test_cli_refuses_seed002_for_a_graph(tmp_path):
    """Seed 002's notation is about a network's layers: a [graph] is refused with a message
    that says why and what to use, before anything is written."""
    out = tmp_path / "g.tex"
    spec = str(ROOT / "examples" / "logistic_l2.toml")
    result = CliRunner().invoke(main, ["latex", spec, "-o", str(out), "--notation", "seed002"])
    assert result.exit_code == 2
    assert "--notation seed002 writes the layers of a [network]" in result.output
    assert "use --notation seed003" in result.output
    assert not out.exists()


def test_cli_without_pdflatex_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "x.tex"
    spec = str(ROOT / "examples" / "cs229_two_layer.toml")
    result = CliRunner().invoke(main, ["latex", spec, "-o", str(out), "--pdf"])
    assert result.exit_code == 2
    assert "apt-get install texlive-latex-base texlive-latex-recommended" in result.output
    assert not out.exists() and not (tmp_path / "x.pdf").exists()  # refused before writing


def test_cli_refuses_a_file_it_did_not_write(tmp_path):
    out = tmp_path / "mine.tex"
    out.write_text("my own notes\n")
    spec = str(ROOT / "examples" / "cs229_two_layer.toml")
    result = CliRunner().invoke(main, ["latex", spec, "-o", str(out)])
    assert result.exit_code == 2
    assert out.read_text() == "my own notes\n"


@pytest.mark.tex
def test_latex_failure_shows_the_error_lines(tmp_path):
    tex = tmp_path / "bad.tex"
    tex.write_text("\\documentclass{article}\\begin{document}\\nosuchmacro\\end{document}\n")
    with pytest.raises(LatexError) as err:
        compile_pdf(tex)
    assert "Undefined control sequence" in str(err.value)
    assert not (tmp_path / "bad.pdf").exists()
    assert os.listdir(tmp_path) == ["bad.tex"]
