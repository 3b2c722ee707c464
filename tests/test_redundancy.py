"""The redundancy report, checked against hand counts and the seeds' own derivations."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import sympy

from symbp.analysis.redundancy import mul_div_count, op_count, report
from symbp.derivation import derive
from symbp.errors import SpecError
from symbp.front.spec import load, loads
from symbp.ir.functions import builtin_table
from symbp.resources import example_specs
from tests.conftest import ROOT, network_spec

SEED004 = ROOT / "examples" / "logistic_l2.toml"


@pytest.fixture(scope="module")
def seed004():
    return report(SEED004)


def test_seed004_counts_by_hand(seed004):
    """Forward, counted by hand with the rule (each +, −, ×, ÷, power, call is one):
    z = w·x + b: 2; y = σ(z): 1; L = (y − t)²/2: 3; R = w²/2: 2; E = L + λR: 2 → 10.
    Backprop: ȳ = y − t: 1; z̄ = ȳ·y·(1 − y): 3; w̄ = z̄·x + λ·w: 3 (b̄ = z̄ is a name) → 7."""
    assert seed004.forward_ops == 10
    assert seed004.backprop_ops == 7
    assert seed004.agree is True


def test_seed004_naive_counts_match_the_seeds_closed_forms(seed004):
    """The seed's calculus-class gradients, written here by hand, counted by the same rule."""
    w, b, x, t, lam = sympy.symbols("w b x t lam")
    sigma = builtin_table()["sigmoid"].cls
    s = sigma(w * x + b)
    dw = (s - t) * s * (1 - s) * x + lam * w
    db = (s - t) * s * (1 - s)
    assert seed004.naive_ops == op_count(dw) + op_count(db)
    replacements, reduced = sympy.cse([dw, db])
    cse_ops = sum(op_count(e) for _, e in replacements) + sum(op_count(e) for e in reduced)
    assert seed004.naive_cse_ops == cse_ops


def test_seed004_repeated_subexpressions(seed004):
    """Seed 004 §2.1: "wx + b is computed a total of four times between ∂E/∂w and ∂E/∂b"
    (inside σ(wx + b) and σ′(wx + b), in each of the two gradients: 2 × 2 = 4); "the larger
    expression (σ(wx + b) − t)σ′(wx + b) is computed twice" (once per gradient); and with σ′
    expanded to σ(1 − σ) "six copies of wx + b" (σ three times per gradient: 3 × 2)."""
    function = {r.expr: r.count for r in seed004.repeated if r.view == "function"}
    expanded = {r.expr: r.count for r in seed004.repeated if r.view == "expanded"}
    assert function["b + w*x"] == 4
    assert function["(-t + sigmoid(b + w*x))*sigmoid_prime(b + w*x)"] == 2
    assert expanded["b + w*x"] == 6


def _mlp(depth: int) -> str:
    return network_spec(2, [(2, "tanh")] * (depth - 1) + [(1, "identity")], "squared_error")


@pytest.fixture(scope="module")
def mlp_reports():
    return {depth: report(loads(_mlp(depth))) for depth in range(1, 5)}


def test_mlp_backprop_agrees_with_naive(mlp_reports):
    for depth, result in mlp_reports.items():
        assert result.agree is True, (depth, result.agreement)


def test_naive_grows_faster_than_backprop(mlp_reports):
    for depth in range(1, 4):
        now, deeper = mlp_reports[depth], mlp_reports[depth + 1]
        assert deeper.naive_ops / now.naive_ops > deeper.backprop_ops / now.backprop_ops
    assert mlp_reports[4].naive_ops > 10 * mlp_reports[4].backprop_ops


def test_cheap_gradient_bound(mlp_reports):
    """Theorem 1 (seed 000): the gradient costs a small constant times the loss."""
    for result in mlp_reports.values():
        assert result.cheap_gradient_ratio < 5
        assert result.cheap_gradient_muldiv_ratio < 5


def test_max_ops_skips_the_naive_columns_and_says_so():
    result = report(SEED004, max_ops=10)
    assert result.naive_ops is None and result.naive_cse_ops is None
    assert result.backprop_ops == 7
    assert any("--max-ops 10" in note for note in result.skipped)


def test_report_accepts_a_derivation_and_the_package_function():
    import symbp

    derivation = derive(load(SEED004))
    assert symbp.report(derivation).backprop_ops == 7


def test_cli_json(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "symbp", "report", str(SEED004), "--json"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    for key in ("forward_ops", "naive_ops", "naive_cse_ops", "backprop_ops", "agree", "repeated"):
        assert key in data
    assert data["agree"] is True
    assert {"expr": "b + w*x", "count": 4, "view": "function"} in data["repeated"]


def test_cli_sweep_csv(tmp_path):
    spec = tmp_path / "net.toml"
    spec.write_text(_mlp(2))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "symbp",
            "report",
            str(spec),
            "--sweep",
            "depth=1..3",
            "--width",
            "2",
            "--csv",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines[0].startswith("depth,width,forward_ops,naive_ops")
    naive = [int(line.split(",")[3]) for line in lines[1:]]
    backprop = [int(line.split(",")[5]) for line in lines[1:]]
    assert naive == sorted(naive) and naive[-1] / naive[0] > backprop[-1] / backprop[0]


def test_cli_sweep_refuses_a_graph():
    run = subprocess.run(
        [sys.executable, "-m", "symbp", "report", str(SEED004), "--sweep", "depth=1..2"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "[graph]" in run.stderr


def test_agreement_detects_a_wrong_gradient():
    """The check can fail: a gradient off by 1e-20 relative is caught at 50 digits."""
    from symbp.analysis.redundancy import _agreement
    from symbp.analysis.scalar import concrete_sizes

    derivation = derive(loads(_mlp(3)))
    program = derivation.program
    program.meta["functions"] = derivation.functions
    x = sympy.Symbol("X_0_0")
    right = [sympy.tanh(x) * x]
    wrong = [right[0] * (1 + sympy.Rational(1, 10**20))]
    sizes = concrete_sizes(program, 1)
    assert _agreement(program, right, right, sizes, 0, [x])[0] is True
    assert _agreement(program, right, wrong, sizes, 0, [x])[0] is False


def test_cli_sweep_plot(tmp_path):
    spec = tmp_path / "net.toml"
    spec.write_text(_mlp(2))
    picture = tmp_path / "sweep.png"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "symbp",
            "report",
            str(spec),
            "--sweep",
            "depth=1..2",
            "--plot",
            str(picture),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The plot's title (also its PNG Title) and the table's first line name the family.
    family = "tanh hidden layers of width 2 (inputs = width), 1 identity output, "
    family += "squared_error loss (mean), batch 1"
    assert _png_text(picture.read_bytes())["Title"] == family
    assert run.stdout.splitlines()[0] == family


# ---------------------------------------------------------------- hand counts


def test_seed004_naive_and_cse_counts_by_hand(seed004):
    """Counted on paper, s = σ(wx + b) written out each time (3 operations: ×, +, σ):
    ∂E/∂w = (s − t)·s·(1 − s)·x + λw: three copies of s (9), s − t (1), 1 − s (1), the
    four-factor product (3), λw and the sum (2): 16. ∂E/∂b = (s − t)·s·(1 − s): 9 + 1 + 1 + 2
    = 13. Naive: 29. After CSE: c0 = s (3), c1 = c0(1 − c0)(c0 − t) (1 + 1 + 2 = 4),
    ∂E/∂w = c1·x + λw (3), ∂E/∂b = c1 (0): 10."""
    assert seed004.naive_ops == 29
    assert seed004.naive_cse_ops == 10


def test_seed004_multiplications_by_hand(seed004):
    """× and ÷ only. Forward: w·x (1), (y − t)²/2 (a square and a halving: 2), w²/2 (2), λR
    (1): 6. Backprop: z̄ = ȳ·y·(1 − y) (2), w̄ = z̄·x + λw (2): 4. So (6 + 4)/6."""
    assert (seed004.forward_muldiv, seed004.backprop_muldiv) == (6, 4)
    assert seed004.cheap_gradient_muldiv_ratio == pytest.approx(10 / 6)


def test_mul_div_count_by_hand():
    x, y, z = sympy.symbols("x y z")
    assert mul_div_count(x * y * z) == 2
    assert mul_div_count(x**3 / y) == 3  # x·x·x, then ÷ y
    assert mul_div_count(1 / (2 * x)) == 2  # 2·x, then 1 ÷
    assert mul_div_count(-x * y) == 1  # negation is free
    assert mul_div_count(sympy.sqrt(x) + sympy.exp(y)) == 0  # function calls
    assert mul_div_count(x**2 / y**3) == 4


def test_network_repeated_subexpressions_by_hand():
    """cs229_two_layer (3-4-1, σ hidden, identity out, ½(o − T)², batch 1), counted on paper.
    Let u_j = Σ_i W1_ij X_i + b1_j and r = Σ_j W2_j σ(u_j) + b2 − T, which holds every u_j
    once. The 21 gradients: ∂/∂W2_j = r σ(u_j) (4), ∂/∂b2 = r (1), ∂/∂W1_ij = r W2_j σ′(u_j) X_i
    (12), ∂/∂b1_j = r W2_j σ′(u_j) (4). So r is written 21 times; u_0 once in each r (21)
    plus once more where σ(u_0) or σ′(u_0) is a factor (1 + 3 + 1): 26; σ(u_0) 21 + 1 = 22.
    With σ′(u) = σ(u)(1 − σ(u)) expanded, σ′(u_0) brings two more copies of u_0 each in 4
    gradients: u_0 and σ(u_0) are written 21 + 1 + 2·4 = 30 times."""
    result = report(ROOT / "examples" / "cs229_two_layer.toml")
    function = {r.expr: r.count for r in result.repeated if r.view == "function"}
    expanded = {r.expr: r.count for r in result.repeated if r.view == "expanded"}
    u0 = "W1_0_0*X_0_0 + W1_1_0*X_0_1 + W1_2_0*X_0_2 + b1_0"
    assert function[u0] == 26
    assert function[f"sigmoid({u0})"] == 22
    assert [c for e, c in function.items() if e.startswith("-T_0_0 + ")] == [21]
    assert expanded[u0] == 30
    assert expanded[f"sigmoid({u0})"] == 30
    assert result.agree is True


# ---------------------------------------------------------------- every example


@pytest.mark.parametrize("spec", example_specs(), ids=lambda p: p.stem)
def test_every_example_reports(spec):
    """The naive gradients, where counted, are the backprop gradients, and CSE never costs
    more than the trees it shares. tied_autoencoder's constant ``decay`` cancels from the
    difference of the two gradients; the check must still give it a value."""
    result = report(spec)
    assert result.forward_ops > 0 and result.backprop_ops > 0
    assert result.cheap_gradient_ratio < 5
    if result.naive_ops is None:
        assert result.skipped and "--max-ops" in result.skipped[0]
        return
    assert result.agree is True, result.agreement
    assert result.naive_cse_ops <= result.naive_ops
    assert result.repeated


# ---------------------------------------------------------------- limits


def test_time_limit_interrupts_a_stage_and_names_it(monkeypatch):
    """A stage that would run far past --timeout is stopped at it: here sympy.cse stands for
    any slow SymPy call. The naive column, computed in time, stays."""
    derivation = derive(load(SEED004))  # derive uses sympy.cse too: before the stand-in

    def slow_cse(*args, **kwargs):
        time.sleep(120)

    monkeypatch.setattr(sympy, "cse", slow_cse)
    started = time.monotonic()
    result = report(derivation, timeout=2)
    assert time.monotonic() - started < 60
    assert result.naive_ops == 29 and result.naive_cse_ops is None
    assert any(n.startswith("naive+CSE column skipped: over the time") for n in result.skipped)
    assert result.agreement.startswith("not checked: over the time limit")


def test_time_limit_stops_a_naive_expansion_that_would_take_minutes():
    """A 6-layer, width-4 tanh network under a --max-ops that lets it through: expanding and
    differentiating it takes minutes. With --timeout 1 the case ends, naming both columns."""
    from symbp.cli.report import _network_family

    make = _network_family(loads(_mlp(2)))
    started = time.monotonic()
    result = report(make(6, 4), max_ops=10**12, timeout=1)
    assert time.monotonic() - started < 60
    assert result.naive_ops is None and result.naive_cse_ops is None
    assert result.skipped == [
        "naive and naive+CSE columns skipped: over the time limit of 1 s (--timeout)"
    ]


def test_forward_over_the_time_limit_is_a_clear_error():
    with pytest.raises(SpecError, match="--timeout"):
        report(SEED004, timeout=1e-9)


def test_cli_sweep_names_the_skipped_columns(tmp_path):
    spec = tmp_path / "net.toml"
    spec.write_text(_mlp(2))
    args = [sys.executable, "-m", "symbp", "report", str(spec), "--sweep", "depth=1..2"]
    args += ["--max-ops", "50"]
    table = subprocess.run(args, capture_output=True, text=True)
    assert table.returncode == 0, table.stderr
    assert "note: depth 2, width 2: naive and naive+CSE columns skipped" in table.stdout
    assert "more than --max-ops 50" in table.stdout
    as_csv = subprocess.run([*args, "--csv"], capture_output=True, text=True)
    assert as_csv.stdout.splitlines()[2].startswith("2,2,17,,,15,")
    assert "note: depth 2, width 2: naive and naive+CSE" in as_csv.stderr
    run = subprocess.run([*args, "--json"], capture_output=True, text=True)
    rows = json.loads(run.stdout)
    assert rows[0]["skipped"] == [] and rows[0]["naive_ops"] == 17
    assert rows[1]["naive_ops"] is None and "--max-ops 50" in rows[1]["skipped"][0]


@pytest.mark.parametrize("module", ["symbp.cli.report", "symbp.cli.latex"])
def test_command_modules_import_on_their_own(module):
    run = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr


def _png_text(data: bytes) -> dict[str, str]:
    """The tEXt chunks of a PNG (key → text), read chunk by chunk."""
    import struct

    found, at = {}, 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        if kind == b"tEXt":
            key, _, text = body.partition(b"\0")
            found[key.decode("latin-1")] = text.decode("latin-1")
        at += 12 + length
    return found
