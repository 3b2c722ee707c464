"""Options several commands share, said the same way everywhere: ``--force`` and ``--timeout``."""

from __future__ import annotations

from collections.abc import Callable

import click

from symbp.limits import DEFAULT_TIMEOUT

force_option = click.option(
    "--force", is_flag=True, help="Overwrite files symbp did not write, or that were edited."
)


def timeout_option(covers: str) -> Callable:
    """``--timeout SECONDS`` (default 60), a hard limit on ``covers``."""
    return click.option(
        "--timeout",
        default=DEFAULT_TIMEOUT,
        show_default=True,
        type=click.FloatRange(0.1),
        help=f"Seconds for {covers}; a hard limit, even inside SymPy's C code.",
    )
