"""Errors into one line on stderr and an exit status, for every ``symbp`` command.

Its own module so that the subcommands (``latex_cli``, ``report_cli``) share it with
``cli`` without importing ``cli``, which imports them. Click's own usage errors go through
:class:`OneLineGroup`, everything a command raises through :func:`guard`.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any

import click

from symbp.errors import SpecError, one_line
from symbp.files import OutputError

EXIT_FAILED_CHECK = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


DEBUG = "--debug"


class OneLineGroup(click.Group):
    """The ``symbp`` group: click's usage errors as one line and exit status 2, and
    ``--debug`` accepted anywhere on the command line (it is moved to the front, where the
    group reads it; no subcommand has an option of that name)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        args = list(sys.argv[1:] if args is None else args)
        prog_name = "symbp"  # also under python -m symbp, or a test's runner
        end = args.index("--") if "--" in args else len(args)
        if DEBUG in args[:end]:
            args = [DEBUG, *(a for a in args[:end] if a != DEBUG), *args[end:]]
        try:
            value = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as err:  # plain ``symbp``: the help
            click.echo(err.ctx.get_help() if err.ctx else err.format_message())
            value = 0
        except click.UsageError as err:
            where = f" (see {err.ctx.command_path} --help)" if err.ctx else ""
            fail(f"{err.format_message()}{where}", EXIT_BAD_INPUT)
        except click.ClickException as err:
            fail(err.format_message(), err.exit_code)
        except click.exceptions.Abort:
            fail("interrupted", EXIT_INTERRUPTED)
        if not standalone_mode:
            return value
        sys.exit(value if isinstance(value, int) else 0)


def fail(message: str, status: int = EXIT_BAD_INPUT) -> None:
    click.echo(f"symbp: error: {one_line(message)}", err=True)
    sys.exit(status)


class CheckError(Exception):
    """The generated module could not be checked (it raised, or its loss is not finite)."""


def guard(command: Callable) -> Callable:
    """Turn a bad spec or a refused output into one line on stderr and exit status 2.

    A check that cannot run is one line and exit status 1. Any other error is a bug in symbp:
    it is still one line (exit status 2), and ``--debug`` shows its traceback.
    """

    @wraps(command)
    def run(*args, **kwargs):
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return command(*args, **kwargs)
        except (SpecError, OutputError) as err:
            if debug:
                traceback.print_exc()
            fail(str(err))
        except CheckError as err:
            if debug:
                traceback.print_exc()
            fail(str(err), EXIT_FAILED_CHECK)
        except RecursionError:
            if debug:
                traceback.print_exc()
            fail("the input is too deeply nested to process")
        except MemoryError:
            if debug:
                traceback.print_exc()
            fail("not enough memory: the model's arrays are too large for this machine")
        except OSError as err:
            if debug:
                traceback.print_exc()
            where = f"{err.filename}: " if err.filename else ""
            fail(f"{where}{err.strerror or err}")
        except Exception as err:
            if debug:
                traceback.print_exc()
            fail(
                f"internal error: {type(err).__name__}: {err}; please report it "
                "(rerun with --debug for the traceback)"
            )

    return run
