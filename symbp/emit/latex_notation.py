"""The document's notation: what each value is called, and how its adjoint is written.

``seed003`` (the default) writes a network as seed 003 does: Z₁ = X, the output of layer i is
Z_{i+1} = σᵢ(Zᵢ Wᵢ + 𝟏bᵢᵀ), Gᵢ = ∇_{Zᵢ} ℓ is the adjoint of a layer's output, and the loss is ℓ
(so L can count the layers, as the seed's i = 1, …, L). A layer's pre-activation, which the
seed writes out as Zᵢ Wᵢ, is named Uᵢ. ``seed002`` keeps the code's names (Zₗ, Aₗ, Wₗ = wˡ)
for the batch walk, calls the cost C (L is the last layer, δᴸ), and states seed 002's column
vectors in a section of their own. A ``[graph]`` keeps the names its spec gives, in either
notation's conventions for adjoints; ``seed002``, which is about the layers of a network, is
refused for it.

Every name becomes LaTeX here (``W1`` → W₁, ``l2`` → λ, ``z_p`` → z′); adjoints are bars over
the name (``\\overline{z'}`` for a primed one), except where the notation has its own symbol.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from symbp.derivation import Derivation
from symbp.emit.latex_names import escape_text, latex_name
from symbp.emit.printing import LatexPrinters, latex_name_bar
from symbp.errors import SpecError
from symbp.ir.names import layer_name
from symbp.ir.program import Program

NOTATIONS = ("seed003", "seed002")
DEFAULT = "seed003"


@dataclass
class Notation:
    """Names for one document: each value's LaTeX, its adjoint's, and the values that are
    notation rather than steps (``Wᵀ`` of a tied weight)."""

    key: str
    names: dict[str, str]
    bars: dict[str, str] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)
    symbols: dict[str, str] = field(default_factory=dict)
    loss: str = ""
    """The LaTeX of the loss the gradient is taken of."""
    adjoints: set[str] = field(default_factory=set)
    """The backward values that are adjoints or shares of one (v̄, v̄^{(j)}): the rest are the
    code's temporaries, which the mathematics writes out."""
    depth: int = 0
    """A network's number of layers (0 for a graph)."""

    def bar(self, name: str) -> str:
        return self.bars.get(name) or latex_name_bar(self.names[name], name)


def notation_for(derivation: Derivation, key: str = DEFAULT) -> Notation:
    """The notation ``key`` for this derivation; a SpecError if it does not apply."""
    if key not in NOTATIONS:
        raise SpecError(f"unknown notation '{key}'; use one of {', '.join(NOTATIONS)}")
    program = derivation.program
    network = derivation.model.network
    if network is None and key == "seed002":
        raise SpecError(
            "--notation seed002 writes the layers of a [network] as seed 002's column vectors "
            "(BP1–BP4); this spec is a [graph], whose values have the shapes its steps give "
            "them: use --notation seed003 (the default), which applies to any graph",
            where=derivation.model.source,
        )
    names = {n: latex_name(n) for n in program.vars}
    notation = Notation(key, names)
    for eqn in program.forward_eqns:
        if eqn.op == "transpose":
            # Wᵀ (a tied weight's W.T) is notation, not a step: it is written Wᵀ, never under
            # the name the lowering gave it.
            names[eqn.out] = "{" + names[eqn.args[0]] + r"}^{\top}"
            notation.hidden.add(eqn.out)
    if network is not None:
        notation.depth = len(network.layers)
        if "l2" in names:
            names["l2"] = r"\lambda"
        activations = [layer.activation for layer in network.layers]
        if key == "seed003":
            _seed003_names(notation, program, activations)
            notation.symbols.update(SEED003_SYMBOLS)
            if network.loss == "softmax_cross_entropy":
                names["T"] = "I_{y}"  # seed 003's one-hot rows of the labels y
        else:
            names["L"] = "C"
            notation.symbols.update(SEED002_SYMBOLS)
        for i, activation in enumerate(activations, start=1):
            entry = derivation.functions[activation]
            head = entry.latex if entry.latex and "{x}" not in entry.latex else None
            if activation == "identity":
                head = r"\operatorname{id}"
            head = head or rf"\operatorname{{{escape_text(activation)}}}"
            notation.symbols[f"sigma@{i}"] = head.replace("{", "{{").replace("}", "}}")
    _backward_names(notation, program)
    notation.loss = names[program.loss]
    return notation


SEED003_SYMBOLS = {
    "act": "Z_{{{l1}}}",
    "act_adj": "G_{{{l1}}}",
    "pre": "U_{{{l}}}",
    "W": "W_{{{l}}}",
    "b": "b_{{{l}}}",
    "cost": r"\ell",
    "sigma": r"\sigma_{{{l}}}",
}
"""Seed 003's symbols: layer i maps Zᵢ to Z_{i+1} (Z₁ = X) and Gᵢ = ∇_{Zᵢ} ℓ."""

SEED002_SYMBOLS = {
    "act": "a^{{{l}}}",
    "pre": "z^{{{l}}}",
    "pre_adj": r"\delta^{{{l}}}",
    "W": "w^{{{l}}}",
    "b": "b^{{{l}}}",
    "target": "t",
    "pred": "a^{{{l}}}",
    "cost": "C",
    "cost@indexed": "C_{{x}}",
    "cost_grad": r"\nabla_{{a}} C",
    "sigma": r"\sigma",
    "act@cols": r"\boldsymbol{{a}}^{{{l}}}",
    "pre@cols": r"\boldsymbol{{z}}^{{{l}}}",
    "pre_adj@cols": r"\boldsymbol{{\delta}}^{{{l}}}",
    "target@cols": r"\boldsymbol{{t}}",
    "pred@cols": r"\boldsymbol{{a}}^{{{l}}}",
    "cost_grad@cols": r"\nabla_{{\boldsymbol{{a}}}} C",
}
"""Seed 002's symbols for one sample (column vectors), and in bold for the batch in columns."""


def _seed003_names(notation: Notation, program: Program, activations: list[str]) -> None:
    """Seed 003's symbols: Z₁ = X, Z_{i+1} the output of layer i, Gᵢ its adjoint, ℓ the loss,
    Uᵢ a pre-activation."""
    names, bars = notation.names, notation.bars
    names["X"], bars["X"] = "Z_{1}", "G_{1}"
    names["L"] = r"\ell"
    for i, activation in enumerate(activations, start=1):
        output = layer_name("Z", i) if activation == "identity" else layer_name("A", i)
        names[output], bars[output] = f"Z_{{{i + 1}}}", f"G_{{{i + 1}}}"
        if activation != "identity":
            names[layer_name("Z", i)] = f"U_{{{i}}}"


def _backward_names(notation: Notation, program: Program) -> None:
    """The backward pass's names: ``dv`` is v̄, ``dv_child`` is v̄^{(child)}, the share of v̄
    that comes through ``child``; anything else keeps its own name (the document writes its
    definition in its place)."""
    forward = {e.out for e in program.forward_eqns} | {*program.params, *program.inputs}
    names = notation.names
    for eqn in program.backward_eqns:
        name = eqn.out
        if name.startswith("d") and name[1:] in forward:
            names[name] = notation.bar(name[1:])
            notation.adjoints.add(name)
            continue
        base = name[1:]
        for child in sorted(forward, key=len, reverse=True):
            value = base[: -len(child) - 1]
            if name.startswith("d") and base.endswith("_" + child) and value in forward:
                names[name] = "{" + notation.bar(value) + "}^{(" + names[child] + ")}"
                notation.adjoints.add(name)
                break


def printers(derivation: Derivation, notation: Notation) -> LatexPrinters:
    """The document's printers: the notation's names, ⊙ and (·)^{∘2} for arrays."""
    program = derivation.program
    ranks = program.ranks()
    forward = [*program.inputs, *program.params, *program.consts]
    bars = {n: notation.bar(n) for n in [*forward, *(e.out for e in program.forward_eqns)]}
    return LatexPrinters(
        derivation.functions, notation.names, ranks, bars, notation.symbols, notation.adjoints
    )
