"""``symbp latex``: the derivation as a LaTeX document, optionally compiled to PDF."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from symbp.cli.common import derive_spec
from symbp.cli.guard import fail, guard
from symbp.cli.options import force_option, timeout_option
from symbp.cli.pdf import INSTALL_HINT, LatexError, compile_pdf
from symbp.emit.drawing import GraphvizMissing, draw
from symbp.emit.latex import figure_file, latex_document
from symbp.emit.latex_hvp import hvp_section
from symbp.files import OutputError, check_writable, write_all


@click.command("latex")
@click.argument("spec", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="The .tex file to write, or a directory to write <name>.tex into. "
    "Default: generated/<name>.tex.",
)
@click.option("--pdf", is_flag=True, help="Also compile it (latexmk or pdflatex) to a PDF.")
@click.option(
    "--notation",
    type=click.Choice(["seed003", "seed002"]),
    default="seed003",
    show_default=True,
    help="Whose symbols a network's document uses: seed003 (the batch in rows, Z_i layer "
    "outputs, G_i their adjoints, the backward iteration) or seed002 (column vectors, "
    "δˡ and BP1–BP4, the batch form, softmax + cross-entropy). A [graph] takes seed003.",
)
@click.option(
    "--hvp",
    is_flag=True,
    help="Add a section deriving the Hessian-vector product H·V, step by step (seed 000's "
    "Corollary 1: backprop of ⟨∇L, V⟩).",
)
@timeout_option(
    "the naive derivation and the cost table together (a part still running then is left "
    "out, and the document and a note on stderr say so)"
)
@force_option
@guard
def latex_command(
    spec: Path,
    output: Path | None,
    pdf: bool,
    notation: str,
    hvp: bool,
    timeout: float,
    force: bool,
) -> None:
    """Write the backprop derivation of SPEC as a LaTeX document.

    The document opens with how to read it, then lists the model, the forward pass, the
    backward pass step by step (the chain-rule sum over each value's children, then its
    simplified form), the seeds' own statements (seed 003's or seed 002's for networks,
    seed 001's for a graph of neurons), the naive sympy.diff derivation as seed 004 shows it,
    the cost table of `symbp report`, and with --hvp the Hessian-vector product derived step
    by step. Every displayed equation keeps its sides as expressions, which symbp's line
    verifier evaluates.

    \b
    Example:
      symbp latex examples/softmax_two_layer.toml --pdf
      symbp latex examples/mlp_digits.toml -o mlp.tex --notation seed002
      symbp latex examples/logistic_l2.toml --hvp
    """
    into = output is not None and output.is_dir()
    if output is not None and not into and output.suffix != ".tex":
        raise OutputError(f"{output}: name a .tex file or an existing directory with -o")
    if pdf and shutil.which("pdflatex") is None:
        fail(INSTALL_HINT)
    derivation = derive_spec(spec)
    name = f"{derivation.model.name}.tex"
    path = output / name if into else output or Path("generated") / name
    targets = [path, path.with_suffix(".pdf")] if pdf else [path]
    check_writable(dict.fromkeys(targets, ""), force=force)  # before the document is made
    text, skipped = latex_document(
        derivation, notation, timeout, sections=[hvp_section] if hvp else ()
    )
    outputs = {path: text, **_figure(derivation, path.parent)}
    for written in write_all(outputs, force=force):
        click.echo(f"wrote {written}")
    for note in skipped:
        click.echo(f"note: {note}", err=True)
    if pdf:
        try:
            click.echo(f"wrote {compile_pdf(path, figures=list(outputs)[1:], force=force)}")
        except LatexError as err:
            fail(str(err))


def _figure(derivation, directory: Path) -> dict[Path, bytes]:
    """The computation graph the document includes, drawn by Graphviz; without Graphviz a
    warning, and the document shows a note in the picture's place."""
    try:
        picture = draw(derivation, "pdf", titled=False)
    except GraphvizMissing as err:
        click.echo(f"symbp: warning: no computation-graph figure: {err}", err=True)
        return {}
    return {directory / figure_file(derivation): picture}
