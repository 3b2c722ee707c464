"""``symbp examples``: copy the bundled example specs (and the digits training script) out.

A pip install has no ``examples/`` of its own to point at; this command writes one, so the
commands in every ``--help`` text work as written. The copies carry symbp's header (a comment
line, which TOML and Python ignore): running the command again replaces an unedited copy and
keeps an edited one, or any file symbp did not write, unless ``--force``.
"""

from __future__ import annotations

from pathlib import Path

import click

from symbp.cli.guard import guard
from symbp.cli.options import force_option
from symbp.files import write_all
from symbp.provenance import stamp_text
from symbp.resources import example_files


@click.command("examples")
@click.argument(
    "directory",
    required=False,
    default=Path("examples"),
    type=click.Path(file_okay=False, path_type=Path),
)
@force_option
@guard
def examples_command(directory: Path, force: bool) -> None:
    """Copy the example specs and train_digits.py into DIRECTORY (default: examples/).

    Nothing is written if any file there would be overwritten that symbp did not write, or
    that was edited since (use --force).

    \b
    Example:
      symbp examples                      # -> examples/mlp_digits.toml, ...
      symbp generate examples/mlp_digits.toml
      python examples/train_digits.py     # needs: pip install 'symbp[examples]'
    """
    outputs = {
        directory / source.name: stamp_text(source.read_text(encoding="utf-8"))
        for source in example_files()
    }
    for path in write_all(outputs, force=force):
        click.echo(f"wrote {path}")
    click.echo(
        f"next: symbp generate {directory / 'mlp_digits.toml'} && "
        f"python {directory / 'train_digits.py'}"
    )
