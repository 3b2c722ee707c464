"""The LaTeX derivation: names, the document's equations, and that every example compiles."""

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
from symbp.emit.latex import context, printers_for, render_latex
from symbp.emit.latex_names import backward_latex_name, escape_text, latex_name
from symbp.front.spec import Model, load, loads
from symbp.ir.builder import Builder
from symbp.ir.functions import builtin_table
from symbp.ir.program import Program, Var
from symbp.provenance import Provenance, provenance
from symbp.resources import example_specs
from tests.conftest import ROOT

# ---------------------------------------------------------------- helpers (seed 004 file too)


def compile_and_read(tex: str, directory: Path, stem: str = "doc") -> tuple[str, int]:
    """pdflatex -halt-on-error twice; the PDF's text (pdftotext -raw: in the order it was
    written, so that a superscript beside a fraction stays in its equation) and its pages."""
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
    return text, pages


def squeeze(text: str) -> str:
    """No whitespace, and composed accents (pdftotext writes y + U+0304 for ȳ)."""
    return unicodedata.normalize("NFC", "".join(text.split()))


def step(ctx: dict, name: str) -> dict:
    return next(s for s in ctx["steps"] if s["name"] == name)


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


def check_seed004_document(derivation: Derivation, tmp_path: Path) -> None:
    """Seed 004's derivation: w̄ through z and through R, and z̄ = ȳ σ′(z); it compiles."""
    ctx = context(derivation)
    w_step = step(ctx, r"\bar{w}")
    through = {t["child"]: t["product"] for t in w_step["terms"]}
    assert through == {"z": r"\bar{z} x", "R": r"\bar{R} w"}
    assert w_step["lines"][0] == (
        r"\bar{z}\,\frac{\partial z}{\partial w} + \bar{R}\,\frac{\partial R}{\partial w}"
    )
    assert r"\bar{z} x + \lambda w" in w_step["lines"]
    z_step = step(ctx, r"\bar{z}")
    assert z_step["lines"][:2] == [
        r"\bar{y}\,\frac{\partial y}{\partial z}",
        r"\bar{y}\,\sigma'\left(z\right)",
    ]
    assert step(ctx, r"\bar{E}")["lines"] == ["1"]
    assert step(ctx, r"\bar{R}")["lines"][-1] == r"\bar{E} \lambda"
    tex = render_latex(derivation)
    text, _ = compile_and_read(tex, tmp_path)
    flat = squeeze(text)
    assert "throughz:z̄x" in flat and "throughR:R̄w" in flat
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
    ],
)
def test_latex_name(name, tex):
    assert latex_name(name) == tex


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


# ---------------------------------------------------------------- documents


def test_document_is_deterministic_and_marked():
    derivation = derive(load(ROOT / "examples" / "mlp_digits.toml"))
    first = render_latex(derivation)
    assert first == render_latex(derive(load(ROOT / "examples" / "mlp_digits.toml")))
    assert re.fullmatch(r"% symbp 0\.1\.0 sha256:[0-9a-f]{64}", first.splitlines()[0])
    assert provenance(first.encode()) is Provenance.OURS
    assert str(ROOT) not in first


@pytest.mark.tex
@pytest.mark.parametrize("spec", example_specs(), ids=lambda p: p.stem)
def test_every_example_compiles_with_its_equations(spec, tmp_path):
    derivation = derive(load(spec))
    text, pages = compile_and_read(render_latex(derivation), tmp_path)
    assert pages >= 1
    flat = squeeze(text)
    # Backward: seeded with 1, and a gradient line for every parameter.
    assert unicodedata.normalize("NFC", derivation.program.loss + "\u0304=1") in flat
    assert "Thenaivederivation" in flat
    if derivation.model.network is None:
        # Graphs: every step the user wrote appears as an assigned equation.
        for text_step in derivation.model.graph.steps:
            target = text_step.split("=")[0].strip()
            assert target + "=" in flat, target
        return
    # Forward: the first layer, in the row-major batch form the code uses.
    assert "Z1=XW1+1b1⊤" in flat
    # Backward: the weight gradients as matrix products.
    assert "=X⊤Z̄1" in flat
    assert "=Z̄2W2⊤" in flat
    assert "=A1⊤Z̄2" in flat


@pytest.mark.tex
def test_two_layer_softmax_output_delta_is_a_minus_t(tmp_path):
    derivation = derive(load(ROOT / "examples" / "softmax_two_layer.toml"))
    ctx = context(derivation)
    z2 = step(ctx, r"\bar{Z}_{2}")
    assert z2["lines"][1] == (
        r"\bar{L}\, \frac{1}{m}\left(\operatorname{softmax}\left(Z_{2}\right) - T\right)"
    )
    assert z2["where"] == [r"{S_{2}} &= \operatorname{softmax}\left({Z_{2}}\right)"]
    assert ctx["matrix"][0].startswith(r"G_{L} = \bar{Z}_{L} = \frac{1}{m}\left(A_{L} - T\right)")
    seed002 = context(derivation, "seed002")["matrix"]
    assert seed002[0].startswith(r"\delta^{L} = a^{L} - t")
    assert any(r"\frac{1}{m}" in line for line in seed002)
    text, _ = compile_and_read(render_latex(derivation, "seed002"), tmp_path)
    assert "δL=aL−t" in squeeze(text)


def test_hidden_layer_delta_uses_hadamard_and_transpose():
    ctx = context(derive(load(ROOT / "examples" / "softmax_two_layer.toml")))
    a1 = step(ctx, r"\bar{A}_{1}")
    assert re.sub(r"[{}\s]", "", a1["lines"][1]) == r"\barZ_2W_2^\top"
    z1 = step(ctx, r"\bar{Z}_{1}")
    assert z1["lines"][1] == r"\bar{A}_{1}\,\sigma'\left(Z_{1}\right)"
    assert r"\odot" in z1["lines"][2]
    assert step(ctx, r"\bar{b}_{1}")["lines"][1] == r"\mathbf{1}^{\top} \bar{Z}_{1}"


def test_value_with_two_children_shows_each_contribution():
    """mlp_digits has l2: W1 feeds Z1 and the regularizer."""
    ctx = context(derive(load(ROOT / "examples" / "mlp_digits.toml")))
    w1 = step(ctx, r"\bar{W}_{1}")
    assert len(w1["terms"]) == 2
    assert w1["terms"][0]["product"] == r"X^{\top} \bar{Z}_{1}"


@pytest.mark.tex
def test_seed004_by_hand(tmp_path):
    check_seed004_document(seed004(), tmp_path)


def test_seed004_naive_section_matches_sympy_diff():
    """The naive gradients are sympy.diff of the expanded loss, written independently here."""
    ctx = context(seed004())
    w, b, x, t, lam = sympy.symbols("w b x t lam")
    s = sympy.Function("s")(b + w * x)
    naive = ctx["naive"]
    assert naive["omitted"] == ""
    assert naive["loss"].startswith("E &= ")
    assert len(naive["grads"]) == 2 and len(naive["reduced"]) == 2
    assert naive["cse"][0] == r"c_{0} &= \sigma\left(b + w x\right)"
    # The backward pass simplifies to the same gradient as the naive one.
    expected = sympy.diff((s - t) ** 2 / 2 + lam * w**2 / 2, w)
    assert expected.has(x) and expected.has(lam)


@pytest.mark.tex
def test_greek_and_special_names_compile(tmp_path):
    names = {"w": "w_hidden_2", "lam": "lam", "b": "beta", "L": "a&b%c", "R": "R$#~^", "E": "E{}"}
    derivation = seed004(names)
    tex = render_latex(derivation)
    assert r"w_{\text{hidden\_2}}" in tex
    assert r"\text{a\&b\%c}" in tex
    assert r"\beta" in tex and r"\lambda" in tex
    text, _ = compile_and_read(tex, tmp_path)
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


# ---------------------------------------------------------------- review fixes


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


def test_a_step_never_prints_the_same_line_twice():
    """X^{⊤} Z̄ and {X}^{⊤} {Z̄} print alike: one of them is enough. Compared here with every
    brace and space removed."""
    for spec in example_specs():
        for s in context(derive(load(spec)))["steps"]:
            printed = [re.sub(r"[{}\s]", "", line) for line in s["lines"]]
            assert len(printed) == len(set(printed)), (spec.stem, s["lines"])


def test_naive_section_is_sympy_diff_of_the_seed004_loss():
    """The loss written by hand from seed 004, E = ½(σ(wx + b) − t)² + ½λw², differentiated
    here: the document's naive gradients are these expressions, and its CSE lines give them
    back when the named subexpressions are substituted."""
    derivation = seed004()
    ctx = context(derivation)
    pr = printers_for(derivation)
    w, b, x, t, lam = sympy.symbols("w b x t lam")
    sigma = builtin_table()["sigmoid"].cls
    loss = (sigma(w * x + b) - t) ** 2 / 2 + lam * w**2 / 2
    naive = ctx["naive"]
    assert naive["loss"] == "E &= " + pr.latex(loss)
    for line, p in zip(naive["grads"], (w, b), strict=True):
        head = rf"\frac{{\partial E}}{{\partial {latex_name(str(p))}}} &= "
        assert line == head + pr.latex(sympy.diff(loss, p))
    assert naive["cse"] == [
        r"c_{0} &= \sigma\left(b + w x\right)",
        r"c_{1} &= c_{0} \left(1 - c_{0}\right) \left(c_{0} - t\right)",
    ]
    c1 = sigma(w * x + b) * (1 - sigma(w * x + b)) * (sigma(w * x + b) - t)
    assert sympy.expand(sympy.diff(loss, b) - c1) == 0
    assert sympy.expand(sympy.diff(loss, w) - (c1 * x + lam * w)) == 0
    assert naive["reduced"][0].endswith(r"c_{1} x + \lambda w")
    assert naive["reduced"][1].endswith("&= c_{1}")


@pytest.mark.parametrize("spec", example_specs(), ids=lambda p: p.stem)
def test_every_example_has_its_cost_table(spec):
    """The report's counts, the ratio of Theorem 1 and how they were counted; a report that
    fails would leave a sentence, never a silently missing section."""
    derivation = derive(load(spec))
    cost = context(derivation)["cost_table"]
    assert cost is not None and cost["rows"], cost
    rows = {row[0]: row[1:] for row in cost["rows"]}
    forward = int(rows["(a) forward, as the program computes it"][0])
    backprop = int(rows["(d) backprop"][0])
    assert rows["forward and gradient, (a) + (d)"][0] == str(forward + backprop)
    assert "could not be computed" not in " ".join(cost["notes"])
    if rows["(b) naive sympy.diff, per parameter entry"][0] == "--":
        assert "The naive columns are left out" in " ".join(cost["notes"])
    else:
        assert "the same functions" in " ".join(cost["notes"])


def test_seed004_cost_table_counts_by_hand():
    """Seed 004 counted on paper (see tests/test_redundancy.py): forward 10, naive 29, after
    CSE 10, backprop 7; then (e), the Hessian-vector product, counted in tests/test_hvp.py."""
    rows = context(seed004())["cost_table"]["rows"]
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
