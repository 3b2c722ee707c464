"""Errors into one line on stderr and an exit status, for every ``symbp`` command.

Its own module so that the subcommands (``latex_cli``, ``report_cli``) share it with
``cli`` without importing ``cli``, which imports them.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from functools import wraps

import click

from symbp.errors import SpecError, one_line
from symbp.files import OutputError

EXIT_FAILED_CHECK = 1
EXIT_BAD_INPUT = 2


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
