"""The ``symbp`` command: the group and its subcommands, each in a module of its own."""

from __future__ import annotations

import click

from symbp.cli.examples import examples_command
from symbp.cli.graph import graph_command
from symbp.cli.guard import OneLineGroup
from symbp.cli.latex import latex_command
from symbp.cli.module import check, demo, generate
from symbp.cli.report import report_command
from symbp.version import __version__


@click.group(
    cls=OneLineGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="symbp")
@click.option(
    "--debug", is_flag=True, help="Show the Python traceback of an error (anywhere on the line)."
)
def main(debug: bool) -> None:
    """Derive, explain and generate backpropagation code from a model spec.

    A spec is a small TOML file describing an MLP ([network]) or any computation graph of
    assignments ([graph]). symbp builds the forward pass, applies the chain rule in reverse,
    and writes a standalone NumPy module with forward and backward functions.

    \b
    Start here (the examples in every --help name the specs `symbp examples` copies out):
      symbp examples                      copy the example specs into examples/
      symbp demo                          run everything on the built-in examples
      symbp generate examples/mlp_digits.toml
      symbp check generated/mlp_digits.py
      python examples/train_digits.py     train it (pip install 'symbp[examples]')
    """


for command in (
    examples_command,
    generate,
    check,
    demo,
    latex_command,
    report_command,
    graph_command,
):
    main.add_command(command)
