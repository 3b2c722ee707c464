"""The seeds' own statements of backprop, as verified lines, in each seed's notation.

- ``seed003`` (networks): the batch in rows, Z_{i+1} = σᵢ(Zᵢ Wᵢ + 𝟏bᵢᵀ), the backward iteration
  Gᵢ = (G_{i+1} ⊙ σ′ᵢ(Zᵢ Wᵢ + 𝟏bᵢᵀ)) Wᵢᵀ and ∇_{Wᵢ} ℓ = Zᵢᵀ (G_{i+1} ⊙ σ′ᵢ(…)), stated for every
  layer i and checked at each; for two layers, the seed's closed form ∇_{W₂} ℓ = σ(XW₁)ᵀ(S − I_y).
- ``seed002`` (networks): one sample's column vectors with wˡ_{kj} from neuron k of layer l − 1
  to neuron j of layer l, so zˡ = (wˡ)ᵀ a^{l−1} + bˡ in symbp's (fan-in × units) layout; BP1–BP4
  stated generally, then for the model; the batch form, with the 1/m applied once, at ∇ₐC; and
  for softmax with cross-entropy, the derivation of δᴸ = aᴸ − t.
- seed 001 (graphs of scalars): the forward pass gives ∂z/∂w, the input on w's edge; the
  backward pass gives ∂C/∂z for each neuron, by case 1 (it feeds the output) or case 2 (it
  feeds further neurons, whose ∂C/∂z′ come first).

A general statement (layer l, sample x) is one line whose instances are every layer and sample
it speaks of: the verifier checks each (see :class:`symbp.ir.display.Line`).
"""

from __future__ import annotations

import itertools

import sympy

from symbp.analysis.lines import BATCH as SAMPLES_CHECKED
from symbp.emit.latex_writer import Block, Section, Writer
from symbp.ir import display as d
from symbp.ir.display import BATCH, COLUMNS, layer_fn, symbolic
from symbp.ir.losses import LOSSES
from symbp.ir.program import dim_symbol

LAYERS = sympy.Symbol("L", integer=True, positive=True)
"""The number of layers, in a general statement (the loss is never L in a network's document:
ℓ in seed 003's notation, C in seed 002's)."""
EACH = sympy.Symbol("i", integer=True, positive=True)
"""Seed 003's layer index i."""
LAYER = sympy.Symbol("l", integer=True, positive=True)
SAMPLE = d.SAMPLE
M = dim_symbol("m")


def sections(w: Writer) -> list[Section | None]:
    """The seed sections that apply to this model in this notation."""
    if w.derivation.model.network is not None:
        return [seed003(w) if w.notation.key == "seed003" else seed002(w)]
    return [neurons(w)]


# ---- helpers ------------------------------------------------------------------------------------


def _instances(sides, values: dict[sympy.Symbol, list[int]]) -> tuple:
    """``sides`` with each general symbol given every value it stands for."""
    symbols = list(values)
    out = []
    for combination in itertools.product(*(values[s] for s in symbols)):
        given = {s: sympy.Integer(v) for s, v in zip(symbols, combination, strict=True)}
        out.append(tuple(side.xreplace(given) for side in sides))
    return tuple(out)


def _general(w: Writer, sides, values, note: str = "", **options):
    return w.equation(sides, instances=_instances(sides, values), note=note, **options)


def _concrete(w: Writer, sides, values, note: str = "") -> list:
    """The general ``sides`` written out for each value of the layer symbol (the model's own
    statement), each line checked for every sample."""
    lines = []
    layer_symbol, layers = next(iter(values.items()))
    others = {k: v for k, v in values.items() if k != layer_symbol}
    for layer in layers:
        given = [s.xreplace({layer_symbol: sympy.Integer(layer)}) for s in sides]
        lines.append(_general(w, given, others, note=note) if others else w.equation(given))
    return lines


def _mean(w: Writer) -> bool:
    return w.derivation.model.network.reduction == "mean"


# ---- seed 003 -----------------------------------------------------------------------------------


def seed003(w: Writer) -> Section:
    network = w.derivation.model.network
    depth = len(network.layers)
    loss = LOSSES[network.loss]
    section = Section("Seed 003's form: the backward iteration")
    z = symbolic("act", 2)
    g = symbolic("act_adj", 2)
    weights = symbolic("W", 2)
    bias = symbolic("b", 1)
    cost = symbolic("cost", 0)(LAYERS, BATCH)
    biased = [layer.bias for layer in network.layers]

    def pre(i):  # Z_i W_i + 𝟏 b_iᵀ for layer i, whose input is Z_i
        product = d.MatProd(z(i - 1, BATCH), weights(i, BATCH))
        has_bias = biased[int(i) - 1] if isinstance(i, int | sympy.Integer) else all(biased)
        return product + d.MatProd(d.Ones(M), d.Tr(bias(i, BATCH))) if has_bias else product

    def sigma(name, i, argument):
        return layer_fn(name)(i, argument)

    layers = list(range(1, depth + 1))
    if any(biased) and not all(biased):
        section.text(
            "Some layers have biases and some do not; seed 003's statements below are "
            "written for layers without, and hold for the others with 𝟏bᵢᵀ added."
        )
    shape = r" + \mathbf{1} b_{i}^{\top}" if all(biased) else ""
    section.text(
        "Seed 003 writes the network with the batch in rows: $Z_{1} = X$ and, for each layer "
        rf"$i = 1, \dots, L$ (here $L = {depth}$), $Z_{{i+1}} = \sigma_{{i}}(Z_{{i}} W_{{i}}"
        rf"{shape})$, so that $h(X) = Z_{{L+1}}$:"
    )
    exact = [i for i in layers if biased[i - 1] == all(biased)]
    count = M if _mean(w) else sympy.Integer(1)
    data_loss = d.loss_term(network.loss)(z(LAYERS, BATCH), sympy.Symbol("T"), count)
    section.show(
        [
            _general(w, [z(EACH, BATCH), sigma("sigma", EACH, pre(EACH))], {EACH: exact}),
            _general(w, [cost, data_loss], {LAYERS: [depth]}),
        ]
    )
    section.text(
        r"With $G_{i} = \nabla_{Z_{i}} \ell$, the adjoint of $Z_{i}$ (an array of its shape), "
        "the loss gives the last one, and each layer the one before it by a vector-Jacobian "
        "product; the weights' gradients follow:"
    )
    lines = []
    prediction = loss.display_prediction(z(LAYERS, BATCH))
    if network.loss == "softmax_cross_entropy":
        s = sympy.Symbol("S")
        value = prediction.xreplace({LAYERS: sympy.Integer(depth)})
        lines.append(_general(w, [s, prediction], {LAYERS: [depth]}, defines=((s, value),)))
        prediction = s
    residual = (prediction - sympy.Symbol("T")) / count
    top = [g(LAYERS, BATCH), d.Deriv(cost, z(LAYERS, BATCH)), residual]
    lines.append(_general(w, top, {LAYERS: [depth]}))
    delta = g(EACH, BATCH) * sigma("sigma_prime", EACH, pre(EACH))
    lines.append(
        _general(
            w, [g(EACH - 1, BATCH), d.MatProd(delta, d.Tr(weights(EACH, BATCH)))], {EACH: exact}
        )
    )
    grad = d.MatProd(d.Tr(z(EACH - 1, BATCH)), delta)
    lines.append(_general(w, [d.Deriv(cost, weights(EACH, BATCH)), grad], {EACH: exact}))
    with_bias = [i for i in exact if biased[i - 1]]
    if with_bias:
        column = d.MatProd(d.Tr(delta), d.Ones(M))
        lines.append(_general(w, [d.Deriv(cost, bias(EACH, BATCH)), column], {EACH: with_bias}))
    section.show(lines)
    if network.l2 is not None:
        total = sympy.Symbol(w.program.loss)
        section.text(
            r"With the L2 term, $E = \ell + \frac{\lambda}{2} \sum_{i} "
            r"\lVert W_{i} \rVert^{2}$, each weight's gradient gains $\lambda W_{i}$:"
        )
        decay = d.Deriv(cost, weights(EACH, BATCH)) + sympy.Symbol("l2") * weights(EACH, BATCH)
        section.show([_general(w, [d.Deriv(total, weights(EACH, BATCH)), decay], {EACH: layers})])
    if depth == 2 and network.loss == "softmax_cross_entropy":
        first = r" + \mathbf{1} b_{1}^{\top}" if biased[0] else ""  # as pre(1) writes it
        section.text(
            "For two layers these are seed 003's closed forms, with $Z_{1} = X$ and "
            rf"$Z_{{2}} = \sigma_{{1}}(Z_{{1}} W_{{1}}{first})$:"
        )
        one = pre(1)
        two = {LAYERS: sympy.Integer(2)}
        scaled = (sympy.Symbol("S") - sympy.Symbol("T")) / count
        hidden = d.MatProd(d.Tr(sigma("sigma", 1, one)), scaled)
        inner = d.MatProd(scaled, d.Tr(weights(2, BATCH))) * sigma("sigma_prime", 1, one)
        section.show(
            [
                w.equation([d.Deriv(cost.xreplace(two), weights(2, BATCH)), hidden]),
                w.equation(
                    [
                        d.Deriv(cost.xreplace(two), weights(1, BATCH)),
                        d.MatProd(d.Tr(z(0, BATCH)), inner),
                    ]
                ),
            ]
        )
    return section


# ---- seed 002 -----------------------------------------------------------------------------------


def seed002(w: Writer) -> Section:
    network = w.derivation.model.network
    depth = len(network.layers)
    section = Section("Seed 002's form: BP1--BP4")
    x, ell = SAMPLE, LAYER
    samples = list(range(SAMPLES_CHECKED))
    z, a = symbolic("pre", 1), symbolic("act", 1)
    delta, weights, bias = symbolic("pre_adj", 1), symbolic("W", 2), symbolic("b", 1)
    cost = symbolic("cost", 0)
    t, pred, grad_a = symbolic("target", 1), symbolic("pred", 1), symbolic("cost_grad", 1)
    biased = [layer.bias for layer in network.layers]
    layers = list(range(1, depth + 1))
    fused = LOSSES[network.loss].takes_logits

    def sigma_prime(layer, argument):
        return layer_fn("sigma_prime")(layer, argument)

    section.text(
        "Seed 002 works with one sample at a time, in column vectors: $a^{0}$ is the sample's "
        "input, and $w^{l}_{kj}$ is the weight from neuron $k$ of layer $l-1$ to neuron $j$ "
        "of layer $l$, so that $z^{l}_{j} = \\sum_{k} w^{l}_{kj} a^{l-1}_{k} + b^{l}_{j}$: "
        "$w^{l}$ is the code's $W_{l}$ (fan-in $\\times$ units) as it is, and it enters "
        "transposed. $C$ is the sample's cost, $\\delta^{l} = \\partial C / "
        rf"\partial z^{{l}}$, and $L = {depth}$ layers here. Each statement below holds for "
        "every sample and every layer it names:"
    )
    forward = [
        _general(
            w,
            [
                z(ell, x),
                d.MatProd(d.Tr(weights(ell, x)), a(ell - 1, x))
                + (bias(ell, x) if all(biased) else 0),
            ],
            {ell: [k for k in layers if biased[k - 1] == all(biased)], x: samples},
        )
    ]
    hidden = [k for k in layers if k < depth or not fused]
    forward.append(
        _general(w, [a(ell, x), layer_fn("sigma")(ell, z(ell, x))], {ell: hidden, x: samples})
    )
    if fused:
        prediction = LOSSES[network.loss].display_prediction(z(LAYERS, x))
        forward.append(
            _general(
                w,
                [pred(LAYERS, x), prediction],
                {LAYERS: [depth], x: samples},
                note="(the loss's own output function)",
            )
        )
    section.show(forward)

    # BP1-BP4, generally
    section.text("The four equations (the seed's BP1--BP4), for one sample:")
    elementwise = not fused or network.loss == "sigmoid_binary_cross_entropy"
    general = []
    out_prime = d.prime("sigmoid")(z(LAYERS, x)) if fused else sigma_prime(LAYERS, z(LAYERS, x))
    if elementwise:
        general.append(
            _general(
                w,
                [delta(LAYERS, x), grad_a(LAYERS, x) * out_prime],
                {LAYERS: [depth], x: samples},
                note="(BP1)",
            )
        )
    else:
        j, i = sympy.symbols("j i", integer=True, nonnegative=True)
        width = network.layers[-1].units
        chain = d.IndexSum(
            d.times(
                d.Deriv(cost(LAYERS, x), d.Entry(pred(LAYERS, x), j)),
                d.Deriv(d.Entry(pred(LAYERS, x), j), d.Entry(z(LAYERS, x), i)),
            ),
            j,
            width,
        )
        general.append(
            w.equation(
                [d.Entry(delta(LAYERS, x), i), chain],
                instances=_instances(
                    [d.Entry(delta(LAYERS, x), i), chain], {LAYERS: [depth], x: samples}
                ),
                indices=((i, sympy.Integer(width)),),
                note="(BP1: softmax is not elementwise)",
            )
        )
    back = d.MatProd(weights(ell + 1, x), delta(ell + 1, x)) * sigma_prime(ell, z(ell, x))
    if depth > 1:
        general.append(
            _general(w, [delta(ell, x), back], {ell: layers[:-1], x: samples}, note="(BP2)")
        )
    with_bias = [k for k in layers if biased[k - 1]]
    if with_bias:
        general.append(
            _general(
                w,
                [d.Deriv(cost(LAYERS, x), bias(ell, x)), delta(ell, x)],
                {ell: with_bias, x: samples, LAYERS: [depth]},
                note="(BP3)",
            )
        )
    outer = d.MatProd(a(ell - 1, x), d.Tr(delta(ell, x)))
    general.append(
        _general(
            w,
            [d.Deriv(cost(LAYERS, x), weights(ell, x)), outer],
            {ell: layers, x: samples, LAYERS: [depth]},
            note="(BP4)",
        )
    )
    section.show(general)

    # ... and for this network
    section.text(f"For this network ($L = {depth}$), layer by layer:")
    concrete = []
    if fused or network.layers[-1].activation == "identity":
        concrete.append(_general(w, [delta(depth, x), pred(depth, x) - t(depth, x)], {x: samples}))
    else:
        top = (a(depth, x) - t(depth, x)) * sigma_prime(depth, z(depth, x))
        concrete.append(_general(w, [delta(depth, x), top], {x: samples}))
    for k in reversed(layers[:-1]):
        step = back.xreplace({ell: sympy.Integer(k)})
        concrete.append(_general(w, [delta(k, x), step], {x: samples}))
    for k in reversed(layers):
        grad = outer.xreplace({ell: sympy.Integer(k)})
        concrete.append(_general(w, [d.Deriv(cost(depth, x), weights(k, x)), grad], {x: samples}))
        if biased[k - 1]:
            concrete.append(
                _general(w, [d.Deriv(cost(depth, x), bias(k, x)), delta(k, x)], {x: samples})
            )
    section.show(concrete)
    if network.loss == "softmax_cross_entropy":
        section.blocks += softmax_cross_entropy(w, depth, samples)
    section.blocks += batch_form(w, depth)
    return section


def softmax_cross_entropy(w: Writer, depth: int, samples: list[int]) -> list[Block]:
    """Seed 002's last part: with aᴸ = softmax(zᴸ) and C = −Σⱼ tⱼ log aᴸⱼ, δᴸ = aᴸ − t."""
    out = Section("")
    width = sympy.Integer(w.derivation.model.network.layers[-1].units)
    x, top = SAMPLE, LAYERS
    z, t = symbolic("pre", 1)(top, x), symbolic("target", 1)(top, x)
    a, delta = symbolic("pred", 1)(top, x), symbolic("pre_adj", 1)(top, x)
    cost = symbolic("cost", 0)(top, x)
    i, j, k = sympy.symbols("i j k", integer=True, nonnegative=True)
    entry = d.Entry

    def line(sides, indices=()):
        values = {x: samples, top: [depth]}
        return w.equation(sides, instances=_instances(sides, values), indices=indices)

    out.text(
        "Softmax with cross-entropy (the last part of seed 002): the output is "
        r"$a^{L} = \operatorname{softmax}(z^{L})$, and the cost of a one-hot target $t$ is "
        "the cross-entropy:"
    )
    softmax = sympy.exp(entry(z, j)) / d.IndexSum(sympy.exp(entry(z, k)), k, width)
    out.show(
        [
            line([entry(a, j), softmax], ((j, width),)),
            line([cost, -d.IndexSum(d.times(entry(t, j), sympy.log(entry(a, j))), j, width)]),
        ]
    )
    out.text("Their derivatives, with $I$ the identity matrix, are")
    jacobian = d.times(entry(a, j), d.Ident(j, i) - entry(a, i))
    out.show(
        [
            line([d.Deriv(cost, entry(a, j)), -entry(t, j) / entry(a, j)], ((j, width),)),
            line([d.Deriv(entry(a, j), entry(z, i)), jacobian], ((j, width), (i, width))),
        ]
    )
    out.text(r"so, as $\sum_{j} t_{j} I_{ji} = t_{i}$ and $\sum_{j} t_{j} = 1$ for a one-hot $t$:")
    chain = d.IndexSum(
        d.times(d.Deriv(cost, entry(a, j)), d.Deriv(entry(a, j), entry(z, i))), j, width
    )
    worked = d.IndexSum(d.times(-1, entry(t, j), d.Ident(j, i) - entry(a, i)), j, width)
    out.show(
        [
            line(
                [
                    entry(delta, i),
                    d.Deriv(cost, entry(z, i)),
                    chain,
                    worked,
                    entry(a, i) - entry(t, i),
                ],
                ((i, width),),
            ),
            line([delta, a - t]),
        ]
    )
    return out.blocks


def batch_form(w: Writer, depth: int) -> list[Block]:
    """Seed 002's batch form: the samples as the columns of bold matrices, C the mean of the
    samples' costs, and the 1/m applied once, at ∇ₐC."""
    out = Section("")
    network = w.derivation.model.network
    mean = network.reduction == "mean"
    layers = list(range(1, depth + 1))
    biased = [layer.bias for layer in network.layers]
    ell, cols = LAYER, COLUMNS
    z, a = symbolic("pre", 2), symbolic("act", 2)
    delta, weights, bias = symbolic("pre_adj", 2), symbolic("W", 2), symbolic("b", 1)
    t, pred, grad_a = symbolic("target", 2), symbolic("pred", 2), symbolic("cost_grad", 2)
    cost = symbolic("cost", 0)
    count = M if mean else sympy.Integer(1)
    k = sympy.Symbol("x")  # the samples a sum runs over (not the "one sample" x of above)
    whole = cost(depth, BATCH)
    out.text(
        "For a batch of $m$ samples, seed 002 puts them in the columns of bold matrices "
        r"($\boldsymbol{z}^{l}$ is the code's $Z_{l}$ transposed), and the cost is the "
        + ("mean" if mean else "sum")
        + " of the samples' costs $C_{x}$:"
    )
    lines = [w.equation([whole, d.IndexSum(cost(depth, k), k, M) / count])]
    lines += [w.equation([z(layer, cols), d.Tr(sympy.Symbol(f"Z{layer}"))]) for layer in layers]
    out.show(lines)
    out.text(
        (
            r"The four equations keep their form, $\mathbf{1}$ summing over the samples. The "
            r"$\frac{1}{m}$ of the mean is applied once, in $\nabla_{\boldsymbol{a}} C$, and "
            "every layer inherits it:"
        )
        if mean
        else r"The four equations keep their form, $\mathbf{1}$ summing over the samples:"
    )
    residual = (pred(depth, cols) - t(depth, cols)) / count
    rows = []
    if network.loss == "squared_error":  # the 1/m enters here, and only here
        rows.append(w.equation([grad_a(depth, cols), residual]))
    if network.layers[-1].activation == "identity" or LOSSES[network.loss].takes_logits:
        rows.append(w.equation([delta(depth, cols), residual], note="(BP1)"))
    else:
        top = grad_a(depth, cols) * layer_fn("sigma_prime")(depth, z(depth, cols))
        rows.append(w.equation([delta(depth, cols), top], note="(BP1)"))
    sigma_prime = layer_fn("sigma_prime")(ell, z(ell, cols))
    if depth > 1:
        back = d.MatProd(weights(ell + 1, cols), delta(ell + 1, cols)) * sigma_prime
        rows.append(_general(w, [delta(ell, cols), back], {ell: layers[:-1]}, note="(BP2)"))
    with_bias = [n for n in layers if biased[n - 1]]
    if with_bias:
        column = d.MatProd(delta(ell, cols), d.Ones(M))
        rows.append(
            _general(w, [d.Deriv(whole, bias(ell, cols)), column], {ell: with_bias}, note="(BP3)")
        )
    outer = d.MatProd(a(ell - 1, cols), d.Tr(delta(ell, cols)))
    rows.append(
        _general(w, [d.Deriv(whole, weights(ell, cols)), outer], {ell: layers}, note="(BP4)")
    )
    out.show(rows)
    if network.l2 is not None:
        out.text(
            r"With the L2 term, $E = C + \frac{\lambda}{2} \sum_{l} \lVert w^{l} \rVert^{2}$, "
            r"each weight's gradient gains $\lambda w^{l}$:"
        )
        total = sympy.Symbol(w.program.loss)
        decay = d.Deriv(whole, weights(ell, cols)) + sympy.Symbol("l2") * weights(ell, cols)
        out.show([_general(w, [d.Deriv(total, weights(ell, cols)), decay], {ell: layers})])
    return out.blocks


def _onward(program, value: str, children: dict) -> sympy.Expr:
    """∂C/∂value, as a number where the loss is value itself or a sum it enters with a
    constant weight (E = L + λR: ∂E/∂L = 1), else as the derivative it is."""
    if value == program.loss:
        return sympy.Integer(1)
    uses = children.get(value, [])
    if len(uses) == 1 and uses[0].out == program.loss and uses[0].attr("expr") is not None:
        weight = sympy.diff(uses[0].attr("expr"), sympy.Symbol(value))
        if weight.is_Number:
            return weight
    return d.Deriv(sympy.Symbol(program.loss), sympy.Symbol(value))


# ---- seed 001 -----------------------------------------------------------------------------------


def neurons(w: Writer) -> Section | None:
    """Seed 001's forward and backward passes, for a graph of scalars with neurons a = σ(z)."""
    program = w.program
    if any(program.shape(n) for n in program.vars):
        return None
    functions = w.derivation.functions
    forward = program.forward_eqns
    active = {e.out for e in forward} | set(program.params)
    neurons_of: dict[str, str] = {}  # z → a, for each a = f(z) with f a named function
    for eqn in forward:
        expr = eqn.attr("expr")
        if (
            eqn.op == "ewise"
            and isinstance(expr, sympy.Function)
            and len(expr.args) == 1
            and expr.args[0].is_Symbol
            and functions.by_class(type(expr)) is not None
            and functions.by_class(type(expr)).name != "identity"
        ):
            neurons_of[expr.args[0].name] = eqn.out
    if not neurons_of:
        return None
    loss = sympy.Symbol(program.loss)
    section = Section("Seed 001's form: neuron by neuron")
    children = {n: [e for e in forward if n in e.args] for n in active}
    section.text(
        r"Seed 001 splits each weight's gradient by the chain rule, "
        rf"$\partial {w.notation.loss} / \partial w = (\partial z / \partial w)"
        rf"(\partial {w.notation.loss} / \partial z)$, where $z$ is the neuron the weight "
        "feeds. The forward pass gives the first factor for every parameter: it is the input "
        "on that parameter's edge (1 for a bias)."
    )
    lines = []
    for param in program.params:
        for child in children.get(param, []):
            expr = child.attr("expr")
            if expr is None:
                continue
            local = sympy.diff(expr, sympy.Symbol(param))
            lines.append(
                w.equation([d.LocalDeriv(sympy.Symbol(child.out), sympy.Symbol(param)), local])
            )
    section.show(lines)
    section.text(
        rf"The backward pass gives $\partial {w.notation.loss} / \partial z$ for every "
        "neuron's input $z$, from the output backwards. Case 1: the neuron's output $a$ is an "
        "output of the network, so the derivative is known at once. Case 2: $a$ feeds other "
        "neurons $z'$, whose derivatives come first, and "
        rf"$\partial {w.notation.loss} / \partial z = \sigma'(z) \sum_{{z'}} "
        rf"(\partial z' / \partial a)(\partial {w.notation.loss} / \partial z')$, recursively:"
    )
    order = [e.out for e in reversed(forward) if e.out in neurons_of]
    rows = []
    for z in order:
        a = neurons_of[z]
        entry = functions.by_class(type(program.producer()[a].attr("expr")))
        f_prime = d.prime(entry.name)(sympy.Symbol(z))
        uses = children.get(a, [])
        if not uses:
            continue
        feeds_neurons = any(e.out in neurons_of for e in uses)
        terms = []
        for use in uses:
            expr = use.attr("expr") if use.op == "ewise" else None
            local = (
                sympy.diff(expr, sympy.Symbol(a))
                if expr is not None
                else d.LocalDeriv(sympy.Symbol(use.out), sympy.Symbol(a))
            )
            onward = _onward(program, use.out, children)
            terms.append(d.times(local, onward) if onward != 1 else local)
        case = "(case 2)" if feeds_neurons else "(case 1)"
        sides = [
            d.Deriv(loss, sympy.Symbol(z)),
            d.times(f_prime, d.Deriv(loss, sympy.Symbol(a))),
            d.times(f_prime, d.plus(*terms)),
        ]
        rows.append(w.equation(sides, note=case))
    section.show(rows)
    section.text("and each parameter's gradient is the product of the two passes:")
    grads = []
    for param in program.params:
        uses = children.get(param, [])
        if len(uses) != 1 or uses[0].out not in neurons_of:
            continue
        z = sympy.Symbol(uses[0].out)
        local = sympy.diff(uses[0].attr("expr"), sympy.Symbol(param))
        grads.append(
            w.equation(
                [
                    d.Deriv(loss, sympy.Symbol(param)),
                    d.LocalDeriv(z, sympy.Symbol(param)) * d.Deriv(loss, z),
                    local * d.Deriv(loss, z),
                ]
            )
        )
    section.show(grads)
    return section
