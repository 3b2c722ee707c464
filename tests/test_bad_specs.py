"""A corpus of bad specs: each gives one clear line, exit status 2, no traceback, no file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from symbp.cli import main

NET = (
    "[network]\ninputs = 2\n"
    'layers = [{ units = 2, activation = "tanh" }]\nloss = "squared_error"\n'
)


def graph(
    steps: list[str],
    *,
    loss: str = "E",
    inputs: str = '{ x = "scalar" }',
    params: str = '{ w = "scalar" }',
    extra: str = "",
) -> str:
    """A [graph] spec; steps are TOML literal strings, so they may hold any quote."""
    body = ",\n".join(f"  '''{s}'''" for s in steps)
    return (
        f'name = "g"\n[graph]\ninputs = {inputs}\nparams = {params}\n{extra}'
        f'steps = [\n{body}\n]\nloss = "{loss}"\n'
    )


def net(text: str) -> str:
    return 'name = "n"\n' + text


CORPUS = [
    # (id, spec text, key or None, message fragment)
    ("toml-syntax", 'name = "x"\n[network\n', None, "TOML syntax error"),
    ("missing-name", NET, "name", "missing"),
    ("unknown-top-key", 'name = "n"\nfoo = 1\n' + NET, "foo", "unknown key"),
    ("name-not-identifier", 'name = "my-net"\n' + NET, "name", "not a valid model name"),
    ("name-keyword", 'name = "class"\n' + NET, "name", "Python keyword"),
    ("name-reserved", 'name = "forward"\n' + NET, "name", "used by the generated module"),
    (
        "both-kinds",
        net(NET + '[graph]\nparams = { w = "scalar" }\nsteps = ["E = w"]\nloss = "E"\n'),
        None,
        "exactly one of",
    ),
    ("neither-kind", 'name = "n"\ndescription = "x"\n', None, "exactly one of"),
    (
        "inputs-wrong-type",
        net(NET.replace("inputs = 2", 'inputs = "two"')),
        "network.inputs",
        "must be an integer",
    ),
    (
        "inputs-zero",
        net(NET.replace("inputs = 2", "inputs = 0")),
        "network.inputs",
        "must be between 1",
    ),
    (
        "units-bool",
        net(NET.replace("units = 2", "units = true")),
        "network.layers[0].units",
        "must be an integer",
    ),
    (
        "layers-empty",
        net(NET.replace('[{ units = 2, activation = "tanh" }]', "[]")),
        "network.layers",
        "non-empty list",
    ),
    (
        "layer-unknown-key",
        net(NET.replace("units = 2", "size = 2")),
        "network.layers[0].size",
        "unknown key",
    ),
    (
        "unknown-activation",
        net(NET.replace('"tanh"', '"swoosh"')),
        "network.layers[0].activation",
        "unknown activation 'swoosh'",
    ),
    (
        "unknown-loss",
        net(NET.replace('"squared_error"', '"hinge"')),
        "network.loss",
        "unknown loss 'hinge'",
    ),
    (
        "fused-loss-needs-logits",
        net(NET.replace('"squared_error"', '"softmax_cross_entropy"')),
        "network.layers[0].activation",
        "must be 'identity'",
    ),
    (
        "bad-reduction",
        net(NET + 'reduction = "avg"\n'),
        "network.reduction",
        "must be 'mean' or 'sum'",
    ),
    ("negative-l2", net(NET + "l2 = -1.0\n"), "network.l2", "must be a number ≥ 0"),
    (
        "graph-missing-params",
        'name = "g"\n[graph]\nsteps = ["E = 1"]\nloss = "E"\n',
        "graph.params",
        "missing",
    ),
    ("graph-unknown-key", graph(["E = w*x"], extra="foo = 1\n"), "graph.foo", "unknown key"),
    ("bad-shape", graph(["E = w*x"], params='{ w = "m by n" }'), "graph.params.w", "bad shape"),
    (
        "constant-not-number",
        graph(["E = w*x"], extra='constants = { lam = "big" }\n'),
        "graph.constants.lam",
        "must be a number",
    ),
    (
        "duplicate-declaration",
        graph(["E = w*x"], params='{ x = "scalar" }'),
        "graph.params.x",
        "declared in both",
    ),
    (
        "step-not-string",
        'name = "g"\n[graph]\nparams = { w = "scalar" }\nsteps = [1]\nloss = "E"\n',
        "graph.steps[0]",
        "must be a string",
    ),
    ("undefined-name", graph(["E = w*q"]), "graph.steps[0]", "undefined name 'q'"),
    ("reassigned", graph(["E = w*x", "E = w"]), "graph.steps[1]", "assigned twice"),
    (
        "use-before-definition",
        graph(["E = w*y", "y = x"]),
        "graph.steps[0]",
        "used before the step that defines it",
    ),
    ("assign-a-param", graph(["w = x", "E = w"]), "graph.steps[0]", "steps cannot assign it"),
    (
        "matmul-mismatch",
        graph(["Z = A @ w", "E = sum(Z)"], params='{ w = "4 x 2" }', inputs='{ A = "m x 3" }'),
        "graph.steps[0]",
        "do not match",
    ),
    (
        "add-mismatch",
        graph(["Z = A + w", "E = sum(Z)"], params='{ w = "4" }', inputs='{ A = "m x 3" }'),
        "graph.steps[0]",
        "do not broadcast",
    ),
    (
        "non-scalar-loss",
        graph(["E = A * w"], params='{ w = "scalar" }', inputs='{ A = "m x 3" }'),
        "graph.loss",
        "must be a scalar",
    ),
    (
        "loss-ignores-a-param",
        graph(["E = w*x"], params='{ w = "scalar", c = "scalar" }'),
        None,
        "does not depend on parameter 'c'",
    ),
    ("loss-not-computed", graph(["E = w*x"], loss="Q"), "graph.loss", "not computed by any step"),
    ("loss-is-a-param", graph(["E = w*x"], loss="w"), "graph.loss", "an input or parameter"),
    ("unknown-function", graph(["E = foo(w)"]), "graph.steps[0]", "unknown function 'foo'"),
    (
        "axis-out-of-range",
        graph(["E = sum(sum(A * w, axis=2))"], inputs='{ A = "m x 3" }'),
        "graph.steps[0]",
        "out of range",
    ),
    (
        "fused-loss-shapes",
        graph(["E = squared_error(A * w, B)"], inputs='{ A = "m x 3", B = "m x 2" }'),
        "graph.steps[0]",
        "one shape",
    ),
    (
        "param-keyword",
        graph(["E = x"], params='{ lambda = "scalar" }'),
        "graph.params.lambda",
        "Python keyword",
    ),
    (
        "param-reserved",
        graph(["E = params*x"], params='{ params = "scalar" }'),
        "graph.params.params",
        "used by the generated module",
    ),
    (
        "param-not-identifier",
        graph(["E = x"], params='{ "w-1" = "scalar" }'),
        "graph.params.w-1",
        "not a valid",
    ),
    (
        "size-clashes-with-value",
        graph(["E = sum(A) * w"], inputs='{ A = "w x 3" }'),
        None,
        "names both a value and a size",
    ),
    (
        "function-builtin-name",
        'name = "n"\n[functions]\ntanh = "z"\n' + NET,
        "functions.tanh",
        "built-in name",
    ),
    (
        "function-ignores-z",
        'name = "n"\n[functions]\nflat = "1 + 2"\n' + NET.replace('"tanh"', '"flat"'),
        "functions.flat",
        "does not use its argument z",
    ),
    (
        "function-unknown-name",
        'name = "n"\n[functions]\nf = "z * q"\n' + NET.replace('"tanh"', '"f"'),
        "functions.f",
        "q",
    ),
    # attempts to run code, and inputs that could hang or exhaust memory
    (
        "code-import",
        graph(["E = __import__('os').system('touch PWNED') + w"]),
        "graph.steps[0]",
        "step",
    ),
    ("code-attribute", graph(["E = w.__class__"]), "graph.steps[0]", "step"),
    ("code-shape-attribute", graph(["E = w.shape"]), "graph.steps[0]", "step"),
    ("code-lambda", graph(["E = (lambda q: q)(w)"]), "graph.steps[0]", "step"),
    ("code-comprehension", graph(["E = sum([w for q in x])"]), "graph.steps[0]", "step"),
    ("code-subscript", graph(["E = w[0]"]), "graph.steps[0]", "step"),
    ("code-string", graph(["E = w * 'abc'"]), "graph.steps[0]", "step"),
    ("huge-power", graph(["E = w * 10**10**10"]), "graph.steps[0]", "step"),
    ("deep-nesting", graph(["E = " + "(" * 3000 + "w" + ")" * 3000]), "graph.steps[0]", "step"),
    ("step-without-assignment", graph(["w * x"]), "graph.steps[0]", "step"),
]


@pytest.mark.parametrize(
    ("spec", "key", "fragment"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
def test_bad_spec(tmp_path: Path, monkeypatch, spec: str, key: str | None, fragment: str):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bad.toml"
    path.write_text(spec, encoding="utf-8")
    existing = tmp_path / "generated" / "keep.py"
    existing.parent.mkdir()
    existing.write_text("# Generated by symbp\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["generate", "bad.toml"])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    message = lines[0]
    assert message.startswith("symbp: error: bad.toml: "), message
    if key is not None:
        assert f": {key}: " in message, message
    assert fragment in message, message
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["bad.toml", "generated", "keep.py"]
    assert existing.read_text(encoding="utf-8") == "# Generated by symbp\n"


def test_corpus_size():
    assert len(CORPUS) >= 40
    assert len({c[0] for c in CORPUS}) == len(CORPUS)
