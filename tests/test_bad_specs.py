"""A corpus of bad specs: each gives one clear line, exit status 2, no traceback, no file."""

from __future__ import annotations

import os
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


def with_functions(spec: str, *lines: str) -> str:
    """``spec`` with a [functions] table of ``lines`` before its [graph]."""
    return spec.replace("[graph]", "[functions]\n" + "\n".join(lines) + "\n[graph]")


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
    ("huge-l2", net(NET + "l2 = 1e308\n"), "network.l2", "at most 1e300"),
    (
        "huge-constant",
        graph(["E = w*x*lam*lam"], extra="constants = { lam = 1e308 }\n"),
        "graph.constants.lam",
        "at most 1e300",
    ),
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
        "graph.params.c",
        "does not depend on parameter 'c'",
    ),
    ("loss-not-computed", graph(["E = w*x"], loss="Q"), "graph.loss", "not computed by any step"),
    ("loss-is-a-param", graph(["E = w*x"], loss="w"), "graph.loss", "an input or parameter"),
    (
        "output-not-a-step",
        graph(["E = w*x"], extra='output = "y"\n'),
        "graph.output",
        "output 'y' is not a step; name the step predict returns",
    ),
    (
        "output-is-an-input",
        graph(["E = w*x"], extra='output = "x"\n'),
        "graph.output",
        "output 'x' is an input, parameter or constant",
    ),
    ("output-not-a-string", graph(["E = w*x"], extra="output = 3\n"), "graph.output", "string"),
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
    # text that would end a docstring of the generated module, and so run code when the
    # module is imported or called (the corpus test would see the PWNED file)
    (
        "code-function-comment",
        'name = "n"\n[functions]\n'
        "f = '''z # \"\"\" + __import__('os').system('touch PWNED') + \"\"\"'''\n"
        + NET.replace('"tanh"', '"f"'),
        "functions.f",
        "comments (#) are not allowed",
    ),
    (
        "code-description-quotes",
        net(
            "description = '''\"\"\" + str(__import__('os').system('touch PWNED')) + \"\"\"'''\n"
            + NET
        ),
        "description",
        "may not hold",
    ),
    ("description-backslash", net("description = 'a \\N b'\n" + NET), "description", "backslash"),
    ("description-nul", net('description = "a\\u0000b"\n' + NET), "description", "control"),
    ("description-huge", net(f'description = "{"x" * 3000}"\n' + NET), "description", "at most"),
    ("code-step-comment", graph(["E = w*x # x"]), "graph.steps[0]", "comments"),
    ("code-step-backslash", graph(["E = w \\\n * x"]), "graph.steps[0]", "backslashes"),
    ("step-fullwidth-name", graph(["E = \uff57*x"]), "graph.steps[0]", "U+FF57"),
    # names the generated module uses itself: its helpers, its locals, Python's built-ins
    (
        "param-dims",
        graph(["E = dims*x"], params='{ dims = "scalar" }'),
        "graph.params.dims",
        "used by the generated module",
    ),
    (
        "input-private-helper",
        graph(["E = w*_input"], inputs='{ _input = "scalar" }'),
        "graph.inputs._input",
        "starting with _",
    ),
    (
        "constant-builtin",
        graph(["E = w*w*float"], extra="constants = { float = 0.5 }\n"),
        "graph.constants.float",
        "Python built-in",
    ),
    (
        "step-helper-name",
        graph(["sigmoid = w*x", "E = sigmoid(sigmoid)"]),
        "graph.steps[0]",
        "built-in function name",
    ),
    (
        "step-gradient-name",
        graph(["ims = w*x", "E = ims*ims"]),
        "graph.steps[0]",
        "gradient would be named 'dims'",
    ),
    (
        "size-helper-name",
        graph(["E = sum(A*w)"], inputs='{ A = "softmax x 3" }'),
        "graph.inputs.A",
        "built-in function name",
    ),
    (
        "size-named-scalar",
        graph(["E = sum(A*w)"], inputs='{ A = "scalar x 3" }'),
        "graph.inputs.A",
        '"scalar" stands alone',
    ),
    (
        "ambiguous-name",
        graph(["O = w*x", "E = O*O"]),
        "graph.steps[0]",
        "reads like 1 or 0",
    ),
    ("model-name-stdlib", 'name = "random"\n' + NET, "name", "name of a Python module"),
    (
        "function-python-builtin",
        'name = "n"\n[functions]\ndict = "z*tanh(z)"\n' + NET,
        "functions.dict",
        "Python built-in",
    ),
    (
        "function-sympy-name",
        with_functions(graph(["E = gamma(w*x)"]), 'gamma = "z*tanh(z)"'),
        "functions.gamma",
        "name of a SymPy function",
    ),
    (
        "function-sympy-constant",
        with_functions(graph(["L = E(w*x)"], loss="L"), 'E = "z*tanh(z)"'),
        "functions.E",
        "name of a SymPy function",
    ),
    (
        "function-module-global",
        'name = "n"\n[functions]\nINPUT_SHAPES = "z"\n' + NET,
        "functions.INPUT_SHAPES",
        "used by the generated module",
    ),
    (
        "function-named-like-a-value",
        with_functions(graph(["E = f(w)*f"], inputs='{ f = "scalar" }'), 'f = "z*sigmoid(z)"'),
        "functions.f",
        "collides with the value 'f'",
    ),
    (
        "function-named-like-a-gradient",
        with_functions(graph(["E = dw(w*x)"]), 'dw = "z*sigmoid(z)"'),
        "functions.dw",
        "collides with 'dw'",
    ),
    (
        "function-named-like-a-layer",
        'name = "n"\n[functions]\nA1 = "z*tanh(z)"\n' + NET.replace('"tanh"', '"A1"'),
        "functions.A1",
        "collides with 'A1'",
    ),
    (
        "function-named-like-the-batch",
        'name = "n"\n[functions]\nm = "z*tanh(z)"\n' + NET.replace('"tanh"', '"m"'),
        "functions.m",
        "collides with 'm'",
    ),
    # [functions] bodies whose derivative would keep SymPy busy for minutes
    (
        "function-too-many-piecewise",
        'name = "n"\n[functions]\nf = "relu(z) + relu(z-1) + relu(z-2) + relu(z-3) + relu(z-4)"\n'
        + NET.replace('"tanh"', '"f"'),
        "functions.f",
        "calls too many functions",
    ),
    (
        "function-doubling-chain",
        'name = "n"\n[functions]\nf0 = "tanh(z)"\n'
        + "".join(f'f{i} = "f{i - 1}(f{i - 1}(z))"\n' for i in range(1, 5))
        + NET.replace('"tanh"', '"f4"'),
        "functions.f4",
        "calls too many functions",
    ),
    (
        "function-calls-itself",
        'name = "n"\n[functions]\nf = "z * f(z)"\n' + NET.replace('"tanh"', '"f"'),
        "functions.f",
        "'f' calls itself",
    ),
    (
        "functions-call-each-other",
        'name = "n"\n[functions]\nf = "g(z) + z"\ng = "f(z) * z"\n' + NET.replace('"tanh"', '"f"'),
        "functions.f",
        "'f' calls 'g', defined below it",
    ),
    (
        "functions-too-costly-together",
        'name = "n"\n[functions]\n'
        + "".join(f'f{i} = "tanh(tanh(tanh(tanh(tanh(z + {i})))))"\n' for i in range(5))
        + NET,
        "functions.f4",
        "cost 25 together",
    ),
    (
        "function-power-tower",
        'name = "n"\n[functions]\nf = "(z**16)**16"\n' + NET.replace('"tanh"', '"f"'),
        "functions.f",
        "exponents are limited to ±64",
    ),
    (
        "too-many-functions",
        'name = "n"\n[functions]\n' + "".join(f'f{i} = "z + {i}"\n' for i in range(101)) + NET,
        "functions",
        "at most 100",
    ),
    # constants that are not finite real float64 numbers
    ("log-of-zero", graph(["E = log(0)*w"]), "graph.steps[0]", "not a finite real number"),
    ("sqrt-of-negative", graph(["E = sqrt(-1)*w"]), "graph.steps[0]", "not a real number"),
    ("negative-base-power", graph(["E = (-2)**w"]), "graph.steps[0]", "is not real"),
    ("number-underflow", graph(["E = w * 1e-400"]), "graph.steps[0]", "outside the range"),
    ("number-product-overflow", graph(["E = 1e200*w*1e200"]), "graph.steps[0]", "outside"),
    ("constant-overflows", graph(["E = exp(1000)*w"]), "graph.steps[0]", "outside the range"),
    (
        "function-complex-constant",
        'name = "n"\n[functions]\nf = "z*log(-1)"\n' + NET.replace('"tanh"', '"f"'),
        "functions.f",
        "not a finite real number",
    ),
    (
        "softmax-of-a-scalar",
        graph(["E = softmax_cross_entropy(w, x)"]),
        "graph.steps[0]",
        "classes along the last axis",
    ),
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


@pytest.mark.parametrize("filename", ['m"""+str(1)+""".toml', "m\\N.toml", "m\nx.toml"])
def test_a_file_name_that_could_end_a_docstring_is_refused(tmp_path: Path, monkeypatch, filename):
    """The spec's file name is quoted in the generated module's docstring."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / filename).write_text('name = "n"\n' + NET, encoding="utf-8")
    result = CliRunner().invoke(main, ["generate", filename])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "the file name may not hold double quotes, backslashes or control characters" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == [filename]


def test_a_key_with_a_newline_still_gives_one_line(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text(
        'name = "n"\n[functions]\n"a\\nb" = "z"\n' + NET, encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["generate", "bad.toml"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("symbp: error: bad.toml: functions.a\\nb: 'a\\nb' is not a valid")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "pipe.toml")
    result = CliRunner().invoke(main, ["generate", "pipe.toml"])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line == "symbp: error: pipe.toml: not a regular file; name a .toml spec file"


def test_a_huge_spec_is_refused_before_it_is_parsed(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "huge.toml").write_text('name = "n"\n' + NET + "#" * 1_000_000, encoding="utf-8")
    result = CliRunner().invoke(main, ["generate", "huge.toml"])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line == "symbp: error: huge.toml: the spec is larger than 1000000 bytes"


def test_a_byte_order_mark_is_accepted(tmp_path: Path, monkeypatch):
    """Editors on Windows start UTF-8 files with U+FEFF; TOML parsers do not expect it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bom.toml").write_text('\ufeffname = "bom"\n' + NET, encoding="utf-8")
    result = CliRunner().invoke(main, ["generate", "bom.toml"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "generated" / "bom.py").exists()
