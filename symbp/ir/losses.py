"""The fused losses, one record each: the loss, its gradient on logits, its NumPy helper, its
LaTeX and text forms, and what it assumes of its target and gives as a prediction.

Each takes ``(Z, T)``: per-sample losses summed over outputs, then averaged over the batch
(``reduction="mean"``, the 1/m applied once) or summed. The two on logits take Z before the
softmax or sigmoid, which they apply themselves, so ∂loss/∂Z is the residual S − T (seed 002).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import sympy

from symbp.errors import SpecError
from symbp.ir.display import Bar, loss_term
from symbp.ir.display import Softmax as DSoftmax
from symbp.ir.functions import FunctionTable, builtin_table
from symbp.ir.primitive import Lazy, Op, Printers, VJPContext, check_arity, sym
from symbp.ir.program import Shape, dim_expr, shape_text

if TYPE_CHECKING:  # the builder appends ops, and so imports them
    from symbp.ir.builder import Builder

TARGET_DOCS = {
    "one-hot": "each row sums to 1 (one-hot targets), as the loss assumes",
    "probability": "targets in [0, 1]",
}
"""What a loss assumes of its target, as the generated module's docstring says it."""


_SOFTMAX_CE_HELPER = '''def softmax_cross_entropy(Z, T):
    """Σ_i −Σ_k T_ik log softmax(Z_i)_k, through log-sum-exp so that no exp overflows."""
    log_S = Z - Z.max(axis=-1, keepdims=True)
    log_S -= np.log(np.exp(log_S).sum(axis=-1, keepdims=True))
    return -np.vdot(T, log_S)
'''

_SIGMOID_BCE_HELPER = '''def sigmoid_binary_cross_entropy(Z, T):
    """Σ −[T log σ(Z) + (1 − T) log(1 − σ(Z))] = Σ softplus(Z) − T·Z, on logits Z."""
    return np.sum(np.logaddexp(0, Z) - T * Z)
'''

_SOFTMAX_CE_ARRAY_API = '''def softmax_cross_entropy(xp, Z, T):
    """Σ_i −Σ_k T_ik log softmax(Z_i)_k, through log-sum-exp so that no exp overflows."""
    log_S = Z - xp.max(Z, axis=-1, keepdims=True)
    log_S = log_S - xp.log(xp.sum(xp.exp(log_S), axis=-1, keepdims=True))
    return -xp.sum(T * log_S)
'''

_SIGMOID_BCE_ARRAY_API = '''def sigmoid_binary_cross_entropy(xp, Z, T):
    """Σ −[T log σ(Z) + (1 − T) log(1 − σ(Z))] = Σ softplus(Z) − T·Z, on logits Z."""
    return xp.sum(xp.logaddexp(0.0, Z) - T * Z)
'''


def fused_loss_attrs(shape: Shape, reduction: str) -> dict[str, Any]:
    """Attributes of a fused loss: the batch count its sum is divided by, if any.

    Rows of a 2-D input are samples; a vector or a scalar is one sample.
    """
    if reduction not in ("mean", "sum"):
        raise SpecError(f"unknown reduction '{reduction}'; use 'mean' or 'sum'")
    if reduction == "sum" or len(shape) < 2:
        return {"reduction": reduction}
    return {"reduction": reduction, "count": dim_expr(shape[0])}


class FusedLoss(Op):
    """A loss on logits or outputs ``(Z, T)``: per-sample losses summed over outputs, then
    averaged over the batch (``reduction="mean"``, the 1/m applied once) or summed."""

    arity = 2
    latex_body: ClassVar[str]
    text_body: ClassVar[str]
    target_kind: ClassVar[str] = "real"
    """What the target holds: "one-hot" rows (the loss assumes rows that sum to 1, so that
    ∂/∂Z = S − T), "probability" values in [0, 1], or any "real" numbers."""
    labels: ClassVar[bool] = False
    """Whether integer class labels of shape (m,) are accepted for one-hot target rows."""
    prediction: ClassVar[str | None] = None
    """The op or function the loss applies to its logits (``softmax``, ``sigmoid``): what a
    network's ``predict`` returns; None for a loss on outputs."""
    prediction_doc: ClassVar[str] = "network outputs, one row per sample"
    latex_prediction: ClassVar[str] = "{z}"
    """The prediction in LaTeX, over ``{z}``: the residual of the gradient is it minus T."""
    helper_sources: ClassVar[dict[str, str]] = {}
    """Module-level helpers the NumPy form calls, by name, with their source."""
    array_api_helpers: ClassVar[dict[str, str]] = {}
    """The same for the array API form (each helper takes the namespace ``xp`` first)."""

    def predict(self, builder: Builder, z: str, functions: FunctionTable) -> str:
        """Append the prediction from logits ``z`` (a network's ``predict`` returns it)."""
        return z

    @property
    def takes_logits(self) -> bool:
        """Whether the loss applies its own softmax or sigmoid (so a network's last layer must
        be linear)."""
        return self.prediction is not None

    def shape(self, shapes, attrs):
        check_arity(self, shapes)
        z, t = shapes
        if z != t:
            raise SpecError(
                f"{self.name} needs its two arguments to have one shape, got "
                f"({shape_text(z)}) and ({shape_text(t)})"
            )
        return ()

    def per_entry(self, z: sympy.Expr, t: sympy.Expr) -> sympy.Expr:
        raise NotImplementedError

    def scalar(self, args, attrs):
        z, t = args
        count = 1 if attrs.get("reduction", "mean") == "sum" or z.ndim < 2 else z.shape[0]
        total = self.scalar_total(z, t)
        return np.asarray(total / sympy.Integer(count), dtype=object)

    def scalar_total(self, z: np.ndarray, t: np.ndarray) -> sympy.Expr:
        return sympy.Add(*(self.per_entry(a, b) for a, b in zip(z.flat, t.flat, strict=True)))

    def gradient(self, ctx: VJPContext, z: str) -> sympy.Expr:
        """∂(per-sample loss)/∂z as an expression over names (before the 1/m and ḡ)."""
        raise NotImplementedError

    def vjp(self, ctx, eqn, g, needs, names):
        z, t = eqn.args
        if needs[1]:
            raise SpecError(
                f"the target (second argument) of {self.name} may not depend on parameters"
            )
        count = eqn.attr("count") or sympy.Integer(1)
        residual = self.gradient(ctx, z) - sym(t)
        return [Lazy(g.expr * residual / count, ctx.shape(z)), None]

    def _scale(self, code: str, args: list[str], attrs: dict[str, Any], pr: Printers) -> str:
        count = attrs.get("count")
        return code if count is None else f"{code} / {pr.numpy(count)}"

    def array_api(self, args, attrs, pr):
        """The NumPy form's helper, called with the namespace first."""
        return self._scale(f"{self.name}(xp, {args[0]}, {args[1]})", args, attrs, pr)

    def text(self, args, attrs, pr):
        count = attrs.get("count")
        scale = "" if count is None else f"(1/{pr.text(count)}) "
        return scale + self.text_body.format(z=args[0], t=args[1])

    def display(self, args, attrs, shapes):
        count = attrs.get("count") or sympy.Integer(1)
        return loss_term(self.name)(sym(args[0]), sym(args[1]), count)

    def display_prediction(self, z: sympy.Expr) -> sympy.Expr:
        """The prediction from logits ``z`` as the document displays it (softmax(z), σ(z))."""
        return z

    def of_prediction(self, a: np.ndarray, t: np.ndarray) -> sympy.Expr:
        """The loss summed over entries as a function of the prediction ``a`` (seed 002's
        C(a)), so that ∇ₐC can be taken of it."""
        return self.scalar_total(a, t)

    def display_adjoint(self, eqn, i, program):
        count = eqn.attr("count") or sympy.Integer(1)
        z, t = (sym(x) for x in eqn.args)
        g = Bar(sym(eqn.out))
        if i == 0:
            return None, g * (self.display_prediction(z) - t) / count
        return None, g * self.display_target_partial(z, t) / count

    def display_target_partial(self, z: sympy.Expr, t: sympy.Expr) -> sympy.Expr:
        """∂(per-entry loss)/∂t, elementwise (the target is never differentiated in a
        gradient; this is what its adjoint would be)."""
        return -z

    @property
    def helpers(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.helper_sources)


class SoftmaxCrossEntropy(FusedLoss):
    name = "softmax_cross_entropy"
    helper_sources: ClassVar[dict[str, str]] = {"softmax_cross_entropy": _SOFTMAX_CE_HELPER}
    array_api_helpers: ClassVar[dict[str, str]] = {"softmax_cross_entropy": _SOFTMAX_CE_ARRAY_API}
    target_kind = "one-hot"
    labels = True
    prediction = "softmax"
    prediction_doc = "class probabilities softmax(Z), one row per sample"
    latex_prediction = r"\operatorname{{softmax}}\left({z}\right)"
    latex_body = r"\sum_{{r,k}} -{t}_{{rk}} \log \operatorname{{softmax}}({z}_{{r}})_{{k}}"
    text_body = "Σ_i −Σ_k {t}_ik log softmax({z}_i)_k"

    def predict(self, builder, z, functions):
        return builder.emit("softmax", [z], {}, name="P", exact_name=True)

    def display_prediction(self, z):
        return DSoftmax(z)

    def display_target_partial(self, z, t):
        return -builtin_table()["log"](DSoftmax(z))

    def of_prediction(self, a, t):
        return sympy.Add(*(-tk * sympy.log(ak) for ak, tk in zip(a.flat, t.flat, strict=True)))

    def scalar_total(self, z, t):
        zz = np.atleast_2d(z)
        tt = np.atleast_2d(t)
        terms = []
        for zi, ti in zip(zz, tt, strict=True):
            lse = sympy.log(sympy.Add(*(sympy.exp(v) for v in zi)))
            terms += [-tk * (zk - lse) for zk, tk in zip(zi, ti, strict=True)]
        return sympy.Add(*terms)

    def gradient(self, ctx, z):
        return sym(
            ctx.op("softmax", [z], {}, "S" + z[1:] if z.startswith("Z") else z + "_softmax")
        )

    def numpy(self, args, attrs, pr):
        return self._scale(f"softmax_cross_entropy({args[0]}, {args[1]})", args, attrs, pr)


class SigmoidBinaryCrossEntropy(FusedLoss):
    name = "sigmoid_binary_cross_entropy"
    helper_sources: ClassVar[dict[str, str]] = {
        "sigmoid_binary_cross_entropy": _SIGMOID_BCE_HELPER
    }
    array_api_helpers: ClassVar[dict[str, str]] = {
        "sigmoid_binary_cross_entropy": _SIGMOID_BCE_ARRAY_API
    }
    target_kind = "probability"
    prediction = "sigmoid"
    prediction_doc = "probabilities σ(Z), one row per sample"
    latex_prediction = r"\sigma\left({z}\right)"
    latex_body = (
        r"\sum \left[-{t} \odot \log \sigma({z}) - (1 - {t}) \odot \log(1 - \sigma({z}))\right]"
    )
    text_body = "Σ −[{t} log σ({z}) + (1 − {t}) log(1 − σ({z}))]"

    def predict(self, builder, z, functions):
        return builder.ewise(functions["sigmoid"](sym(z)), name="P")

    def display_prediction(self, z):
        return builtin_table()["sigmoid"](z)

    def of_prediction(self, a, t):
        return sympy.Add(
            *(
                -(tk * sympy.log(ak) + (1 - tk) * sympy.log(1 - ak))
                for ak, tk in zip(a.flat, t.flat, strict=True)
            )
        )

    def per_entry(self, z, t):
        softplus = builtin_table()["softplus"]
        return softplus(z) - t * z

    def gradient(self, ctx, z):
        return builtin_table()["sigmoid"](sym(z))

    def numpy(self, args, attrs, pr):
        return self._scale(f"sigmoid_binary_cross_entropy({args[0]}, {args[1]})", args, attrs, pr)


class SquaredError(FusedLoss):
    name = "squared_error"
    latex_body = r"\tfrac{{1}}{{2}} \lVert {z} - {t} \rVert^{{2}}"
    text_body = "Σ ½ ({z} − {t})²"

    def per_entry(self, z, t):
        return (z - t) ** 2 / 2

    def display_target_partial(self, z, t):
        return t - z

    def gradient(self, ctx, z):
        return sym(z)

    def numpy(self, args, attrs, pr):
        count = attrs.get("count")
        half = "2" if count is None else f"(2 * {pr.numpy(count)})"
        # The first argument depends on a parameter, so it is a NumPy array or scalar.
        return f"(({args[0]} - {args[1]}) ** 2).sum() / {half}"

    def array_api(self, args, attrs, pr):
        count = attrs.get("count")
        half = "2" if count is None else f"(2 * {pr.array_api(count)})"
        return f"xp.sum(({args[0]} - {args[1]}) ** 2) / {half}"


LOSSES: dict[str, FusedLoss] = {
    loss.name: loss
    for loss in (SoftmaxCrossEntropy(), SigmoidBinaryCrossEntropy(), SquaredError())
}
"""Every fused loss, by name."""
