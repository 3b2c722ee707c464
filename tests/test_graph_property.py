"""Random graphs built from the allowed operations generate modules that pass gradcheck."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbp.analysis.gradcheck import check_module

FUNCTIONS = ["tanh", "sigmoid", "softplus", "silu", "gelu", "exp"]
EXAMPLES = 60


def apply(function: str, argument: str) -> str:
    """``function(argument)``, with exp's argument bounded so the loss stays well-conditioned
    (finite differences lose digits in proportion to the loss's size)."""
    if function == "exp":
        return f"exp(tanh({argument}))"
    return f"{function}({argument})"


@st.composite
def graphs(draw):
    """A [graph] spec: matrices (m x k) and vectors mixed by @, .T, elementwise ops,
    functions, reductions and broadcasting; every parameter reaches the loss."""
    k = draw(st.integers(2, 3))
    values = {"X": ("m", k)}
    steps = []
    params = {
        "W": (k, k),
        "b": (k,),
        "s": (),
    }
    counter = iter(range(1, 100))

    def new(shape, text):
        name = f"v{next(counter)}"
        steps.append(f"{name} = {text}")
        values[name] = shape
        return name

    first = new(("m", k), "X @ W + b")
    current = new(("m", k), f"{apply(draw(st.sampled_from(FUNCTIONS)), first + ' * s')} / {k}")
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["ewise", "func", "matmul", "residual", "gram", "broadcast"]))
        others = [n for n, sh in values.items() if sh == ("m", k)]
        other = draw(st.sampled_from(others))
        if kind == "ewise":
            # v - v is identically zero and would rightly be refused (the loss would not
            # depend on the parameters behind v); subtract only distinct values.
            op = draw(st.sampled_from(["+", "*"] if other == current else ["+", "-", "*"]))
            current = new(("m", k), f"{current} {op} {other}")
        elif kind == "func":
            current = new(("m", k), apply(draw(st.sampled_from(FUNCTIONS)), current))
        elif kind == "matmul":
            current = new(("m", k), f"tanh({current} @ W.T)")
        elif kind == "residual":
            current = new(("m", k), f"{current} + sigmoid({current} @ W) * {other}")
        elif kind == "gram":
            gram = new((k, k), f"{current}.T @ {other} / 4")
            current = new(("m", k), f"{current} @ {gram}")
        else:
            col = new((k,), f"mean({current}, axis=0)")
            current = new(("m", k), f"{current} - {col} * b")
    # The loss goes through tanh so that it stays of order one: finite differences lose digits
    # in proportion to the loss's size, and products of values can grow without bound.
    reduction = draw(st.sampled_from(["sum", "mean", "ce"]))
    if reduction == "ce":
        steps.append(f"E = softmax_cross_entropy(3 * tanh({current}), T) + s**2 / 2")
        inputs = f'{{ X = "m x {k}", T = "m x {k}" }}'
    else:
        steps.append(f"E = {reduction}(tanh({current})**2) + sum(b * b) / 2")
        inputs = f'{{ X = "m x {k}" }}'
    params_text = ", ".join(
        f'{n} = "{" x ".join(map(str, sh)) if sh else "scalar"}"' for n, sh in params.items()
    )
    body = ",\n".join(f'  "{s}"' for s in steps)
    return (
        f'name = "random_graph"\n[graph]\ninputs = {inputs}\nparams = {{ {params_text} }}\n'
        f'steps = [\n{body}\n]\nloss = "E"\n'
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(spec=graphs(), seed=st.integers(0, 1000))
def test_random_graphs_pass_gradcheck(build_module, spec, seed):
    module, _ = build_module(spec)
    result = check_module(module, batch=3, seed=seed)
    assert result.ok, spec + "\n" + result.table()


TOKENS = [
    *["x", "w", "A", "W", "v", "f", "E", "m", "T"],
    *["tanh(", "relu(", "exp(", "log(", "sqrt(", "sum(", "mean(", "f(", "sigmoid("],
    *["softmax_cross_entropy(", "squared_error("],
    *["0", "1", "2.5", "-1", "1e300", "1e-300", "64"],
    *["+", "-", "*", "/", "**", "@", ".T", "(", ")", ", ", ", axis=0", ", axis=1"],
]
"""Pieces of steps: names declared or not, functions, numbers, operators, brackets."""


@settings(max_examples=150, deadline=None)
@given(pieces=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12))
def test_any_step_derives_or_gives_a_spec_error(pieces):
    """A step made of any sequence of pieces either derives and generates a module, or is a
    SpecError (one line, exit 2 in the CLI); nothing else is raised."""
    from symbp.derivation import derive
    from symbp.emit.numpy_module import generate
    from symbp.errors import SpecError
    from symbp.front.spec import loads

    step = "E = " + "".join(pieces)
    spec = (
        'name = "fuzz"\n[functions]\nf = "z * sigmoid(z)"\n[graph]\n'
        'inputs = { x = "scalar", A = "m x 3", T = "m x 3" }\n'
        'params = { w = "scalar", W = "3 x 3", v = "3" }\n'
        f"steps = ['''{step}''']\nloss = \"E\"\n"
    )
    try:
        generate(derive(loads(spec)))
    except SpecError as err:
        assert "\n" not in str(err)
