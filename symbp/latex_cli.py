"""``symbp latex``: the derivation as a LaTeX document, optionally compiled to PDF."""

from __future__ import annotations

from pathlib import Path

import click

from symbp.guard import fail, guard


@click.command("latex")
@click.argument("spec", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The .tex file to write. Default: generated/<name>.tex.",
)
@click.option("--pdf", is_flag=True, help="Also compile it (latexmk or pdflatex) to a PDF.")
@click.option(
    "--notation",
    type=click.Choice(["seed003", "seed002"]),
    default="seed003",
    show_default=True,
    help="Network matrix form: row-major batch (seed003, as the code) or column vectors "
    "with δˡ and BP1–BP4 (seed002).",
)
@click.option("--force", is_flag=True, help="Overwrite an output file symbp did not write.")
@guard
def latex_command(spec: Path, output: Path | None, pdf: bool, notation: str, force: bool) -> None:
    """Write the backprop derivation of SPEC as a LaTeX document.

    The document lists the model, the forward pass, the backward pass step by step (the
    chain-rule sum over each value's children, then its simplified form), the matrix form for
    networks and, for small models, the naive sympy.diff derivation.

    \b
    Example:
      symbp latex examples/softmax_two_layer.toml --pdf
      symbp latex examples/mlp_digits.toml -o mlp.tex --notation seed002
    """
    from symbp.cli import _derive
    from symbp.files import write_all
    from symbp.latex import LatexError, compile_pdf, render_latex

    derivation = _derive(spec)
    path = output or Path("generated") / f"{derivation.model.name}.tex"
    outputs = {path: render_latex(derivation, notation), **_figure(derivation, path.parent)}
    for written in write_all(outputs, force=force):
        click.echo(f"wrote {written}")
    if pdf:
        try:
            click.echo(f"wrote {compile_pdf(path, figures=list(outputs)[1:])}")
        except LatexError as err:
            fail(str(err))


def _figure(derivation, directory: Path) -> dict[Path, bytes]:
    """The computation graph the document includes, drawn by Graphviz; without Graphviz a
    warning, and the document shows a note in the picture's place."""
    from symbp.drawing import GraphvizMissing, draw
    from symbp.latex import figure_file

    try:
        picture = draw(derivation, "pdf", titled=False)
    except GraphvizMissing as err:
        click.echo(f"symbp: warning: no computation-graph figure: {err}", err=True)
        return {}
    return {directory / figure_file(derivation): picture}
