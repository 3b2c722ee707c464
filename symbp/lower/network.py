"""MLP sugar: layers + loss + regularizer → forward Program, in the row-major batch form.

``Z{l} = A{l-1} @ W{l} + b{l}``, ``A{l} = act(Z{l})``, ``A0 = X`` of shape (m, inputs), as in
seed 003; a layer with ``bias = false`` has no ``b{l}`` (``Z{l} = A{l-1} @ W{l}``, seed 003's
own form). The loss divides by m once (seed 002), and L2 adds (l2/2)·Σ‖Wₗ‖², biases excluded.
"""

from __future__ import annotations

import sympy

from symbp.front.spec import Network
from symbp.ir.builder import Builder
from symbp.ir.functions import FunctionTable
from symbp.ir.losses import LOSSES, fused_loss_attrs
from symbp.ir.names import layer_name
from symbp.ir.program import Program, Var

BATCH = "m"


def build_network(net: Network, name: str, functions: FunctionTable) -> tuple[Program, Program]:
    """The training Program (loss) and the prediction Program (outputs) of a network."""
    program = _declare(net, name)
    builder = Builder(program)
    logits = _layers(builder, net, functions)
    loss = builder.emit(
        net.loss,
        [logits, "T"],
        fused_loss_attrs(program.vars[logits].shape, net.reduction),
        name="L",
        exact_name=True,
        doc="the data loss",
    )
    if net.l2 is not None:
        norms = [
            builder.emit("sum_squares", [layer_name("W", i)], {}, name=layer_name("R", i))
            for i in range(1, len(net.layers) + 1)
        ]
        penalty = sympy.Add(*(sympy.Symbol(r) for r in norms))
        objective = sympy.Symbol(loss) + sympy.Symbol("l2") / 2 * penalty
        loss = builder.ewise(objective, name="E", exact_name=True, doc="loss plus L2 penalty")
    program.loss = loss

    predict = _declare(net, name, with_targets=False)
    pbuilder = Builder(predict)
    output = _layers(pbuilder, net, functions)
    predict.loss = LOSSES[net.loss].predict(pbuilder, output, functions)
    return program, predict


def _declare(net: Network, name: str, *, with_targets: bool = True) -> Program:
    outputs = net.layers[-1].units
    variables = {"X": Var("X", (BATCH, net.inputs), "input", doc="inputs, one sample per row")}
    inputs = ["X"]
    if with_targets:
        variables["T"] = Var("T", (BATCH, outputs), "input", doc="targets")
        inputs.append("T")
    params = []
    fan_in = net.inputs
    for i, layer in enumerate(net.layers, start=1):
        w, b = layer_name("W", i), layer_name("b", i)
        variables[w] = Var(w, (fan_in, layer.units), "param", doc=f"layer {i} weights")
        params.append(w)
        if layer.bias:
            variables[b] = Var(b, (layer.units,), "param", doc=f"layer {i} biases")
            params.append(b)
        fan_in = layer.units
    consts = []
    if net.l2 is not None and with_targets:
        variables["l2"] = Var("l2", (), "const", default=net.l2, doc="L2 penalty weight")
        consts.append("l2")
    meta = {"kind": "network", "loss": net.loss, "reduction": net.reduction, "l2": net.l2}
    meta["init"] = {p: ("zeros" if p.startswith("b") else "fan_in") for p in params}
    loss = LOSSES[net.loss]
    if loss.labels:
        meta["labels"] = {"T": outputs}
    if loss.target_kind != "real":
        meta["kinds"] = {"T": loss.target_kind}
    return Program(
        name=name,
        vars=variables,
        eqns=[],
        loss="",
        inputs=inputs,
        params=params,
        consts=consts,
        meta=meta,
    )


def _layers(builder: Builder, net: Network, functions: FunctionTable) -> str:
    activation = "X"
    for i, layer in enumerate(net.layers, start=1):
        w, b = layer_name("W", i), layer_name("b", i)
        z = builder.emit(
            "affine" if layer.bias else "matmul",
            [activation, w, b] if layer.bias else [activation, w],
            {},
            name=layer_name("Z", i),
            exact_name=True,
        )
        if layer.activation == "identity":
            activation = z
        else:
            expr = functions[layer.activation](sympy.Symbol(z))
            activation = builder.ewise(expr, name=layer_name("A", i), exact_name=True)
    return activation
