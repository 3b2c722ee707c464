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

from symbp.errors import SpecError
from symbp.guard import guard
from symbp.redundancy import DEFAULT_MAX_OPS, DEFAULT_TIMEOUT, Report, report, sweep
from symbp.spec import Layer, Model, load

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
)
SWEEP_WIDTHS = (5, 5, 8, 9, 9, 8, 9, 7)


def _aligned(cells) -> str:
    return " ".join(f"{c:>{w}}" for c, w in zip(cells, SWEEP_WIDTHS, strict=True))


def _table(result: Report) -> str:
    rows = [
        ("(a) forward, as the Program computes it", result.forward_ops),
        ("(b) naive sympy.diff, per parameter entry", result.naive_ops),
        ("(c) naive + sympy.cse", result.naive_cse_ops),
        ("(d) backprop, the gradient Program", result.backprop_ops),
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
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--batch", default=1, show_default=True, type=click.IntRange(1, 64), help="Batch rows m."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--sweep", "sweep_depth", default=None, help="Depths to sweep, e.g. depth=1..6.")
@click.option("--width", default="2", show_default=True, help="Widths for --sweep, e.g. 2..4.")
@click.option("--csv", "as_csv", is_flag=True, help="With --sweep: print CSV.")
@click.option(
    "--plot", type=click.Path(dir_okay=False, path_type=Path), help="With --sweep: a PNG."
)
@click.option(
    "--max-ops",
    default=DEFAULT_MAX_OPS,
    show_default=True,
    type=click.IntRange(1),
    help="Skip naive columns above this estimated size.",
)
@click.option(
    "--timeout",
    default=DEFAULT_TIMEOUT,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Seconds per case.",
)
@guard
def report_command(spec, batch, as_json, sweep_depth, width, as_csv, plot, max_ops, timeout):
    """Count naive differentiation against CSE and backprop, and show the redundancy.

    The loss is expanded at small concrete sizes (batch from --batch, other named sizes 2)
    into scalar SymPy expressions. Four counts follow, by one rule (sympy.count_ops): (a) the
    forward pass as the Program computes it; (b) sympy.diff of the fully expanded loss for every
    parameter entry, counted as trees; (c) the same after sympy.cse; (d) the backprop gradient
    Program. The report checks that (b) and (d) agree and lists the subexpressions the naive
    gradients repeat. Naive expansion is estimated first and skipped above --max-ops.

    \b
    Examples:
      symbp report examples/logistic_l2.toml
      symbp report examples/cs229_two_layer.toml --json
      symbp report examples/cs229_two_layer.toml --sweep depth=1..4 --width 2..3 --csv
    """
    model = load(spec)
    if sweep_depth is None:
        result = report(model, batch=batch, max_ops=max_ops, timeout=timeout)
        click.echo(json.dumps(result.to_json(), indent=2) if as_json else _table(result))
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
    ]
    table = [
        [
            d,
            w,
            r.forward_ops,
            r.naive_ops,
            r.naive_cse_ops,
            r.backprop_ops,
            r.ratio(r.naive_ops),
            r.ratio(r.backprop_ops),
        ]
        for d, w, r in rows
    ]
    notes = [f"depth {d}, width {w}: {note}" for d, w, r in rows for note in r.skipped]
    if as_json:
        objects = []
        for (_, _, r), row in zip(rows, table, strict=True):
            item = dict(zip(header, row, strict=True))
            item["cheap_gradient_ratio"] = r.cheap_gradient_ratio
            item["cheap_gradient_muldiv_ratio"] = r.cheap_gradient_muldiv_ratio
            item["agree"] = r.agree
            item["skipped"] = r.skipped
            objects.append(item)
        click.echo(json.dumps(objects, indent=2))
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
        click.echo(out.getvalue(), nl=False)
        for note in notes:  # empty cells in the CSV; the reason on stderr
            click.echo(f"note: {note}", err=True)
    else:
        click.echo(title)
        click.echo(_aligned(SWEEP_COLUMNS))
        for row in table:
            shown = [
                "skipped" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
                for v in row
            ]
            click.echo(_aligned(shown))
        for note in notes:
            click.echo(f"note: {note}")
    if plot is not None:
        _plot(rows, plot, title)
        click.echo(f"wrote {plot}", err=True)


def _plot(rows, path: Path, family: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SpecError("--plot needs matplotlib: pip install 'symbp[plot]'") from None
    from symbp.files import write_atomic

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
    write_atomic(path, buffer.getvalue())
