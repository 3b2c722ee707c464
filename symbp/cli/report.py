"""``symbp report``: the redundancy report in the terminal, as JSON, CSV or a plot."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import click
from click.core import ParameterSource

from symbp.analysis.redundancy import DEFAULT_MAX_OPS, Report, TooSlow, report, sweep
from symbp.cli.guard import guard
from symbp.cli.options import force_option, timeout_option
from symbp.errors import SpecError
from symbp.files import check_writable, write_all
from symbp.front.spec import Layer, Model, load
from symbp.provenance import stamp_json, stamp_png, stamp_text

_RANGE = re.compile(r"^\s*(\d+)\s*(?:\.\.\s*(\d+))?\s*$")


def _parse_range(text: str, what: str) -> list[int]:
    match = _RANGE.match(text)
    if not match:
        raise SpecError(f"{what} must look like 3 or 1..6, got {text!r}")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if not 1 <= low <= high <= 64:
        raise SpecError(f"{what} must be between 1 and 64, low to high, got {text!r}")
    return list(range(low, high + 1))


def _verdict(agree: bool | None) -> str:
    return {True: "yes", False: "NO", None: "not checked"}[agree]


SWEEP_COLUMNS = (
    "depth",
    "width",
    "forward",
    "naive",
    "naive+cse",
    "backprop",
    "naive÷fwd",
    "bp÷fwd",
    "hvp",
    "hvp÷fwd",
)
SWEEP_WIDTHS = (5, 5, 8, 9, 9, 8, 9, 7, 8, 7)


def _aligned(cells) -> str:
    return " ".join(f"{c:>{w}}" for c, w in zip(cells, SWEEP_WIDTHS, strict=True))


def _table(result: Report) -> str:
    rows = [
        ("(a) forward, as the Program computes it", result.forward_ops),
        ("(b) naive sympy.diff, per parameter entry", result.naive_ops),
        ("(c) naive + sympy.cse", result.naive_cse_ops),
        ("(d) backprop, the gradient Program", result.backprop_ops),
        ("(e) Hessian-vector product, all of hvp", result.hvp_ops),
    ]
    lines = [
        f"{result.name}: sizes {result.sizes}, {result.parameter_entries} parameter entries",
        "",
        f"{'derivation':<44} {'operations':>10}  {'÷ forward':>9}",
    ]
    for label, count in rows:
        ratio = result.ratio(count)
        shown = "skipped" if count is None else str(count)
        lines.append(f"{label:<44} {shown:>10}  {'' if ratio is None else f'{ratio:9.2f}'}")
    lines += [
        "",
        f"cheap gradient (a + d) / a: {result.cheap_gradient_ratio:.2f} all operations, "
        f"{result.cheap_gradient_muldiv_ratio:.2f} × and ÷ only "
        "(Baur–Strassen: ≤ 3, rational functions)",
        f"backprop = naive: {_verdict(result.agree)} ({result.agreement})",
    ]
    if result.hvp_ops is not None:
        lines.append(
            f"Hessian-vector product (e) / a: {result.hvp_ratio:.2f}; against Corollary 1's "
            f"O(N + l), N = a = {result.forward_ops}, l = {result.parameter_entries}: "
            f"e / (N + l) = {result.corollary_ratio:.2f}"
        )
    lines += [f"note: {s}" for s in result.skipped]
    for view, title in (
        (
            "function",
            "Repeated in the naive gradients, activation derivatives kept as f_prime(u):",
        ),
        ("expanded", "Repeated with the derivatives expanded:"),
    ):
        items = [r for r in result.repeated if r.view == view]
        if items:
            lines += ["", title]
            lines += [f"  {r.count:>5}×  {r.expr}" for r in items]
    lines += [
        "",
        "Operations are sympy.count_ops: each +, −, ×, ÷, power, negation and function call.",
    ]
    return "\n".join(lines)


def _network_family(model: Model):
    """MLPs of a given depth (layers) and width (units), with the spec's activation and loss."""
    net = model.network
    if net is None:
        raise SpecError("--sweep varies a [network]'s depth and width; this spec is a [graph]")
    hidden, outputs = _hidden_activation(net), _outputs(net)

    def make(depth: int, width: int) -> Model:
        layers = tuple(Layer(width, hidden) for _ in range(depth - 1))
        last = Layer(outputs, net.layers[-1].activation)
        sized = replace(net, inputs=width, layers=(*layers, last))
        return replace(model, name=f"{model.name}_d{depth}_w{width}", network=sized)

    return make


def _hidden_activation(net) -> str:
    return net.layers[0].activation if len(net.layers) > 1 else "tanh"


def _outputs(net) -> int:
    return min(net.layers[-1].units, 2)


def _sweep_title(model: Model, widths: list[int], batch: int) -> str:
    """What the sweep's networks are: it varies depth and width and keeps the rest."""
    net = model.network
    shown = ", ".join(map(str, widths))
    return (
        f"{_hidden_activation(net)} hidden layers of width {shown} (inputs = width), "
        f"{_outputs(net)} {net.layers[-1].activation} output{'s' * (_outputs(net) > 1)}, "
        f"{net.loss} loss ({net.reduction}), batch {batch}"
    )


@click.command("report")
@click.argument("spec", type=click.Path(path_type=Path))
@click.option(
    "--batch", default=1, show_default=True, type=click.IntRange(1, 64), help="Batch rows m."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--sweep", "sweep_depth", default=None, help="Depths to sweep, e.g. depth=1..6.")
@click.option("--width", default="2", show_default=True, help="Widths for --sweep, e.g. 2..4.")
@click.option("--csv", "as_csv", is_flag=True, help="With --sweep: print CSV.")
@click.option("--plot", type=click.Path(path_type=Path), help="With --sweep: a PNG.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Write the table, JSON or CSV to this file (with symbp's header line), not stdout.",
)
@force_option
@click.option(
    "--max-ops",
    default=DEFAULT_MAX_OPS,
    show_default=True,
    type=click.IntRange(1),
    help="Skip naive columns above this estimated size.",
)
@timeout_option("the report, or the whole --sweep (stages still running then are named)")
@guard
def report_command(
    spec, batch, as_json, sweep_depth, width, as_csv, plot, output, force, max_ops, timeout
):
    """Count naive differentiation against CSE and backprop, and show the redundancy.

    The loss is expanded at small concrete sizes (batch from --batch, other named sizes 2)
    into scalar SymPy expressions. Four counts follow, by one rule (sympy.count_ops): (a) the
    forward pass as the Program computes it; (b) sympy.diff of the fully expanded loss for every
    parameter entry, counted as trees; (c) the same after sympy.cse; (d) the backprop gradient
    Program. The report checks that (b) and (d) agree and lists the subexpressions the naive
    gradients repeat. Naive expansion is estimated first and skipped above --max-ops. (e)
    counts the Hessian-vector product hvp() computes (seed 000's Corollary 1: O(N + l)).

    \b
    Examples:
      symbp report examples/logistic_l2.toml
      symbp report examples/cs229_two_layer.toml --json
      symbp report examples/cs229_two_layer.toml --sweep depth=1..4 --width 2..3 --csv
    """
    _refuse_combinations(sweep_depth, as_json, as_csv, plot, output)
    model = load(spec)
    if output is not None or plot is not None:  # refuse before computing, not after
        check_writable({p: "" for p in (output, plot) if p is not None}, force=force)
    if sweep_depth is None:
        try:
            result = report(model, batch=batch, max_ops=max_ops, timeout=timeout)
        except TooSlow as err:
            raise SpecError(
                f"{err.message}; use a larger --timeout, or a smaller --batch or model"
            ) from None
        if as_json:
            _emit(json.dumps(result.to_json(), indent=2), output, force, result.to_json())
        else:
            _emit(_table(result), output, force)
        return
    depths = _parse_range(sweep_depth.removeprefix("depth="), "--sweep depth")
    widths = _parse_range(width, "--width")
    make = _network_family(model)
    title = _sweep_title(model, widths, batch)
    with click.progressbar(
        length=len(depths) * len(widths), label="sweep", file=sys.stderr
    ) as bar:
        rows = sweep(
            make,
            depths,
            widths,
            batch=batch,
            max_ops=max_ops,
            timeout=timeout,
            progress=lambda: bar.update(1),
        )
    header = [
        "depth",
        "width",
        "forward_ops",
        "naive_ops",
        "naive_cse_ops",
        "backprop_ops",
        "naive_ratio",
        "backprop_ratio",
        "hvp_ops",
        "hvp_ratio",
    ]
    table = [[d, w, *_sweep_cells(r)] for d, w, r in rows]
    notes = [f"depth {d}, width {w}: {note}" for d, w, r in rows for note in _notes(r)]
    if as_json:
        objects = []
        for (_, _, r), row in zip(rows, table, strict=True):
            item = dict(zip(header, row, strict=True))
            counted = isinstance(r, Report)
            item["cheap_gradient_ratio"] = r.cheap_gradient_ratio if counted else None
            item["cheap_gradient_muldiv_ratio"] = (
                r.cheap_gradient_muldiv_ratio if counted else None
            )
            item["agree"] = r.agree if counted else None
            item["skipped"] = _notes(r)
            objects.append(item)
        _emit(json.dumps(objects, indent=2), output, force, objects)
    elif as_csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(
            [
                ["" if v is None else (f"{v:.4g}" if isinstance(v, float) else v) for v in row]
                for row in table
            ]
        )
        _emit(out.getvalue().removesuffix("\n"), output, force)
        for note in notes:  # empty cells in the CSV; the reason on stderr
            click.echo(f"note: {note}", err=True)
    else:
        lines = [title, _aligned(SWEEP_COLUMNS)]
        for row in table:
            shown = [
                "skipped" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
                for v in row
            ]
            lines.append(_aligned(shown))
        lines += [f"note: {note}" for note in notes]
        _emit("\n".join(lines), output, force)
    if plot is not None:
        _plot([(d, w, r) for d, w, r in rows if isinstance(r, Report)], plot, title, force)
        click.echo(f"wrote {plot}", err=True)


def _refuse_combinations(sweep_depth, as_json, as_csv, plot, output) -> None:
    """Flags that cannot work together are refused before anything is computed."""
    context = click.get_current_context()
    if as_json and as_csv:
        raise SpecError("--json and --csv are two formats; choose one")
    if sweep_depth is None:
        for flag, given in (
            ("--csv", as_csv),
            ("--plot", plot is not None),
            ("--width", context.get_parameter_source("width") is not ParameterSource.DEFAULT),
        ):
            if given:
                raise SpecError(f"{flag} works with --sweep only; add --sweep depth=A..B")
    if plot is not None and output is not None and plot == output:
        raise SpecError("--plot and -o name the same file; name two files")
    if plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise SpecError("--plot needs matplotlib: pip install 'symbp[plot]'") from None


def _emit(text: str, output: Path | None, force: bool, payload=None) -> None:
    """Print ``text``, or write it to ``output`` under symbp's header line (JSON: ``payload``
    under ``"report"``)."""
    if output is None:
        click.echo(text)
        return
    stamped = stamp_json(payload) if payload is not None else stamp_text(text + "\n")
    write_all({output: stamped}, force=force)
    click.echo(f"wrote {output}", err=True)


def _sweep_cells(r: Report | str) -> list:
    if not isinstance(r, Report):
        return [None] * 8
    return [
        r.forward_ops,
        r.naive_ops,
        r.naive_cse_ops,
        r.backprop_ops,
        r.ratio(r.naive_ops),
        r.ratio(r.backprop_ops),
        r.hvp_ops,
        r.hvp_ratio,
    ]


def _notes(r: Report | str) -> list[str]:
    return list(r.skipped) if isinstance(r, Report) else [r]


def _plot(rows, path: Path, family: str, force: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    widths = sorted({w for _, w, _ in rows})
    colors = plt.get_cmap("viridis")
    series = (
        ("naive_ops", "naive", "-", "o"),
        ("naive_cse_ops", "naive + CSE", "--", "s"),
        ("backprop_ops", "backprop", ":", "^"),
        ("forward_ops", "forward", "-.", "x"),
    )
    missing = False
    for i, width in enumerate(widths):
        color = colors(i / max(len(widths) - 1, 1) * 0.85)
        mine = [(d, r) for d, w, r in rows if w == width]
        for key, label, line, marker in series:
            points = [(d, getattr(r, key)) for d, r in mine if getattr(r, key) is not None]
            missing = missing or len(points) < len(mine)
            if points:
                ax.plot(
                    *zip(*points, strict=True),
                    linestyle=line,
                    marker=marker,
                    color=color,
                    label=f"{label}, width {width}",
                )
    ax.set_xticks(sorted({d for d, _, _ in rows}))
    ax.set_yscale("log")
    ax.set_xlabel("depth (layers)")
    ax.set_ylabel("operations (sympy.count_ops)")
    title = f"Naive differentiation against CSE and backprop\n{family}"
    if missing:
        title += "\n(missing points: naive columns skipped, see --max-ops and --timeout)"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, metadata={"Software": None, "Title": family})
    plt.close(fig)
    write_all({path: stamp_png(buffer.getvalue())}, force=force)
