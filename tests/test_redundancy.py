"""The redundancy report, checked against hand counts and the seeds' own derivations."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sympy

from symbp.build import derive
from symbp.functions import builtin_table
from symbp.redundancy import op_count, report
from symbp.spec import load, loads
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
    from symbp.redundancy import _agreement
    from symbp.scalar import concrete_sizes

    derivation = derive(loads(_mlp(3)))
    program = derivation.program
    program.meta["functions"] = derivation.functions
    x = sympy.Symbol("X_0_0")
    right = [sympy.tanh(x) * x]
    wrong = [right[0] * (1 + sympy.Rational(1, 10**20))]
    sizes = concrete_sizes(program, 1)
    assert _agreement(program, right, right, sizes, 0)[0] is True
    assert _agreement(program, right, wrong, sizes, 0)[0] is False


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
