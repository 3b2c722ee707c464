"""The commands on generated modules: ``generate``, ``check`` and ``demo``."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import click

from symbp.analysis.gradcheck import RESOLUTION, CheckLimit, check_in_time, check_module
from symbp.cli.common import (
    SUFFIXES,
    TARGETS,
    derive_spec,
    render_module,
    require_target,
    verify_module,
)
from symbp.cli.guard import EXIT_FAILED_CHECK, CheckError, guard
from symbp.cli.options import force_option, timeout_option
from symbp.errors import SpecError
from symbp.files import OutputError, write_all
from symbp.loader import UnverifiedModule, load_module, module_from_source
from symbp.resources import example_specs


@click.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="A .py file (one spec), or a directory (existing, or a new name without a suffix). "
    "Default: generated/<name>.py (generated/<name>_array_api.py for --target array-api).",
)
@click.option(
    "--target",
    type=click.Choice(list(TARGETS)),
    default="numpy",
    show_default=True,
    help="numpy: a module that imports only NumPy. array-api: one module for any array "
    "library of the Python array API standard (NumPy, CuPy, PyTorch, JAX, Dask), through "
    "array-api-compat (pip install 'symbp[array-api]').",
)
@force_option
@click.option(
    "--no-verify",
    is_flag=True,
    help="Skip the check of each module's gradient against its loss before it is written "
    "(for models whose forward pass is too costly to run a few times).",
)
@guard
def generate(
    specs: tuple[Path, ...], output: Path | None, target: str, force: bool, no_verify: bool
) -> None:
    """Write the NumPy module (or, with --target array-api, the array API module) of each SPEC.

    The module imports only NumPy and exposes PARAM_SHAPES, init_params, forward, backward,
    loss_and_grad (and predict, for networks and for graphs that name an output). The array
    API module has the same functions for the arrays of any library (its one import is
    array-api-compat), and ROW_SPLIT, which symbp.dask reads to split a batch over workers.
    Every spec is read and derived before anything is written; on any error no file is
    written. A file that symbp did not write is never overwritten without --force.

    Before it is written, each module verifies itself: at a random float64 point, its
    gradient's derivative along two random directions must equal a fourth-order central
    difference of its loss. If not, nothing is written and the exit status is 1.

    \b
    Example:
      symbp generate examples/mlp_digits.toml          # -> generated/mlp_digits.py
      symbp generate examples/*.toml -o build/
      symbp generate --target array-api examples/mlp_digits.toml
    """
    require_target(target)
    as_file = _output_is_file(output, len(specs))
    outputs: dict[Path, str] = {}
    for spec in specs:
        derivation = derive_spec(spec)
        name = f"{derivation.model.name}{SUFFIXES[target]}.py"
        path = output if as_file else (output or Path("generated")) / name
        if path in outputs:
            raise OutputError(f"two specs are named '{derivation.model.name}'; rename one")
        outputs[path] = render_module(derivation, spec, target)
        if not no_verify:
            verify_module(outputs[path], spec)
    for path in write_all(outputs, force=force):
        click.echo(f"wrote {path}")


def _resolvable(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not value >= RESOLUTION:
        raise click.BadParameter(
            f"{value:g} is below what central differences in float64 resolve; "
            f"the smallest meaningful tolerance is {RESOLUTION:g}"
        )
    return value


def _output_is_file(output: Path | None, specs: int) -> bool:
    """Whether ``-o`` names the module file (else a directory to write into). An existing
    directory is one; a name with a suffix is a file, and must be a .py file for one spec: a
    directory is never made under a name that looks like a file's."""
    if output is None or output.is_dir():
        return False
    if output.suffix != ".py" and (output.suffix or output.exists()):
        raise OutputError(
            f"{output} is not a directory, and a module's file name ends in .py; "
            "name a .py file or a directory"
        )
    if output.suffix == ".py" and specs > 1:
        raise OutputError("-o names one file, but several specs were given; name a directory")
    return output.suffix == ".py"


@click.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option(
    "--batch",
    default=4,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Rows of the random batch.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the random point.")
@click.option(
    "--tolerance",
    default=1e-6,
    show_default=True,
    type=float,
    callback=_resolvable,
    help="Largest relative error that passes; at least 1e-7, the smallest relative error "
    "finite differences in float64 resolve.",
)
@click.option(
    "--trust",
    is_flag=True,
    help="Check a module that does not verify as symbp's own and unedited (hand-written or "
    "edited). This RUNS THE FILE'S CODE: use it only on files you trust.",
)
@click.option(
    "--hvp",
    is_flag=True,
    help="Check the Hessian-vector product instead: hvp(..., V) against fourth-order central "
    "differences of the gradient along a random V, entry by entry.",
)
@timeout_option("the check (one that cannot finish in time is refused at once)")
@guard
def check(
    target: Path,
    batch: int,
    seed: int,
    tolerance: float,
    trust: bool,
    hvp: bool,
    timeout: float,
) -> None:
    """Check gradients against finite differences, for a spec or a generated module.

    TARGET is a spec (.toml: its module is generated in memory) or a module written by
    `symbp generate`, whose header (the SHA-256 of the rest of the file) must verify before
    anything in it runs (--trust runs it anyway).
    At a random float64 point, every parameter entry is moved by
    ±h and ±2h (h = 1e-3·max(1, |θ|)) and the fourth-order central difference is compared with
    backward(); near a ReLU kink, smaller and one-sided steps are taken. relative error =
    |fd − bp| / max(|fd|, |bp|, floor), the floor being 1e-5 or the stencil's rounding bound
    ÷ 1e-7 if larger. Exit status 1 if any parameter's largest relative error exceeds the
    tolerance.

    With --hvp the same table compares H·V from hvp() with the derivative of the gradient
    along a random direction V, entry by entry: the fourth-order central difference of
    loss_and_grad() at θ ± hV, θ ± 2hV, with h = 1e-3/max(1, ‖V‖) (smaller and one-sided
    steps near a kink, as above).

    \b
    Example:
      symbp check examples/logistic_l2.toml
      symbp check generated/mlp_digits.py --batch 8 --seed 3
      symbp check examples/mlp_digits.toml --hvp
    """
    if target.suffix == ".toml":
        if trust:
            raise SpecError("--trust is for a module (.py); a spec's module is symbp's own")
        derivation = derive_spec(target)
        try:
            module = module_from_source(render_module(derivation, target), derivation.model.name)
        except Exception as err:
            raise CheckError(
                f"{target}: the generated module does not import: {type(err).__name__}: "
                f"{err}; please report it"
            ) from err
    else:
        module = _load_generated(target, trust)
    if hvp and not callable(getattr(module, "hvp", None)):
        raise CheckError(
            f"{target}: the module has no hvp (it was written before symbp made Hessian-vector "
            "products); regenerate it with symbp generate"
        )
    try:
        # NumPy's warnings (log of a negative number) would be lines of their own; the check
        # reports what matters: a loss that is not finite, or the errors of the gradients.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = check_in_time(
                module, batch=batch, seed=seed, tolerance=tolerance, timeout=timeout, hvp=hvp
            )
    except MemoryError:
        raise
    except CheckLimit as err:
        raise CheckError(f"{target}: {err}") from err
    except Exception as err:
        raise CheckError(
            f"{target}: the check could not run: {type(err).__name__}: {err}"
        ) from err
    click.echo(f"{target}: loss {result.loss:.6g} at a random point (batch {batch}, seed {seed})")
    if hvp:
        click.echo("H·V from hvp against finite differences of the gradient along a random V:")
    click.echo(result.table())
    verdict = "ok" if result.ok else "FAILED"
    click.echo(
        f"{verdict}: largest relative error {result.max_rel_error:.2e} (tolerance {tolerance:g})"
    )
    if not result.ok:
        sys.exit(EXIT_FAILED_CHECK)


def _load_generated(path: Path, trust: bool):
    """Import a module written by ``symbp generate`` whose header verifies; anything else is
    refused without running it, unless ``trust``."""
    if path.suffix != ".py":
        raise SpecError(
            "expected a spec (.toml) or a module written by `symbp generate` (.py)",
            where=str(path),
        )
    try:
        return load_module(path, trust=trust, how_to_trust="add --trust")
    except (SpecError, UnverifiedModule) as err:
        raise SpecError(str(err)) from None
    except Exception as err:  # a trusted module is the user's file: report, do not crash
        raise SpecError(
            f"cannot import the module: {type(err).__name__}: {err}", where=str(path)
        ) from None


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@force_option
@click.option("--no-verify", is_flag=True, help="Skip the check before each module is written.")
@guard
def demo(directory: Path | None, force: bool, no_verify: bool) -> None:
    """Generate and check every built-in example, with no other arguments.

    Writes each example's module to DIRECTORY (default: symbp-demo/) and checks it against
    finite differences, printing one line per example.

    \b
    Example:
      symbp demo
      symbp demo /tmp/out
    """
    directory = directory or Path("symbp-demo")
    specs = example_specs()
    derivations = [derive_spec(spec) for spec in specs]
    outputs = {
        directory / f"{d.model.name}.py": render_module(d, spec)
        for d, spec in zip(derivations, specs, strict=True)
    }
    if not no_verify:
        for spec, source in zip(specs, outputs.values(), strict=True):
            verify_module(source, spec)
    write_all(outputs, force=force)
    failed = 0
    click.echo(f"{'example':<24} {'params':>7} {'fwd':>4} {'bwd':>4}  max rel error  ok")
    for derivation, (path, text) in zip(derivations, outputs.items(), strict=True):
        # the text just written, not the file read back: nothing can swap it in between
        result = check_module(module_from_source(text, path.stem, str(path)))
        program = derivation.program
        entries = sum(r.entries for r in result.rows)
        failed += not result.ok
        click.echo(
            f"{derivation.model.name:<24} {entries:>7} {len(program.forward_eqns):>4} "
            f"{len(program.backward_eqns):>4}  {result.max_rel_error:>13.2e}  "
            f"{'yes' if result.ok else 'NO'}"
        )
    click.echo(f"wrote {len(outputs)} modules to {directory}/")
    if failed:
        sys.exit(EXIT_FAILED_CHECK)
