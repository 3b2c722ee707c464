"""``symbp graph``: the computation graph of a spec as a picture (SVG, PNG, PDF) or DOT text."""

from __future__ import annotations

from pathlib import Path

import click

from symbp.cli.common import derive_spec
from symbp.cli.guard import guard
from symbp.emit.drawing import draw, format_of
from symbp.files import write_all


@click.command("graph")
@click.argument("spec", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The picture: .svg, .png, .pdf or .dot. Default: generated/<name>.svg.",
)
@click.option(
    "--backward", is_flag=True, help="Add the adjoints and one edge per chain-rule term."
)
@click.option(
    "--level",
    type=click.Choice(["values", "scalars"]),
    default="values",
    show_default=True,
    help="One node per value, or one per entry at batch 1 (at most 200 nodes).",
)
@click.option("--force", is_flag=True, help="Overwrite an output file symbp did not write.")
@guard
def graph_command(
    spec: Path, output: Path | None, backward: bool, level: str, force: bool
) -> None:
    """Draw the computation graph of SPEC.

    Inputs, parameters, constants and computed values are nodes labelled with their names and
    shapes; each assignment is a small op node. --backward adds each value's adjoint (v̄) and
    an edge for every term of the chain rule, v̄ᵢ ← v̄ⱼ ∂vⱼ/∂vᵢ, labelled with the term, so a
    value used twice receives two edges. Graphviz lays the graph out: .dot needs nothing
    installed, the other formats need its dot program (apt-get install graphviz).

    \b
    Example:
      symbp graph examples/logistic_l2.toml --backward
      symbp graph examples/mlp_digits.toml -o mlp.pdf
      symbp graph examples/cs229_two_layer.toml --level scalars -o cs229.dot
    """
    if output is not None:
        format_of(output.suffix)  # an unknown format is refused before any work
    derivation = derive_spec(spec)
    path = output or Path("generated") / f"{derivation.model.name}.svg"
    picture = draw(derivation, format_of(path.suffix), backward=backward, level=level)
    write_all({path: picture}, force=force)
    click.echo(f"wrote {path}")
