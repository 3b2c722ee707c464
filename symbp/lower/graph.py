"""``[graph]`` specs: declared values and single-assignment steps → forward Program.

Each step is parsed (never evaluated) into a small tree and lowered: elementwise subtrees become
one ``ewise`` assignment, so ``L = (y - t)**2 / 2`` stays one line as the user wrote it, while
``@``, ``.T``, ``sum``, ``mean`` and the fused losses become assignments of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sympy

from symbp.errors import SpecError
from symbp.front import parse as P
from symbp.front.parse import ARITHMETIC, ParseError, check_real, names_in, parse_step, quoted
from symbp.front.spec import Model, parse_shape
from symbp.ir.builder import Builder
from symbp.ir.functions import FunctionTable
from symbp.ir.losses import LOSSES, fused_loss_attrs
from symbp.ir.names import check_name, clashes
from symbp.ir.ops import step_calls
from symbp.ir.program import Program, Shape, Var, broadcast_shapes, shape_text


@dataclass(frozen=True)
class _Value:
    """A lowered subtree: an elementwise expression over value names, and its shape.

    ``arrays`` names the arrays the subtree reads, even where SymPy simplified them away:
    ``W - W`` is 0, but its shape is W's.
    """

    expr: sympy.Expr
    shape: Shape
    arrays: frozenset[str] = frozenset()


def build_graph(model: Model, functions: FunctionTable) -> tuple[Program, Program | None]:
    """The forward Program of a graph spec, and its prediction Program if the spec names an
    ``output``; every error names the step and its text."""
    graph = model.graph
    assert graph is not None
    variables: dict[str, Var] = {}
    for name, text in graph.inputs.items():
        variables[name] = Var(name, parse_shape(text), "input")
    for name, text in graph.params.items():
        variables[name] = Var(name, parse_shape(text), "param")
    for name, value in graph.constants.items():
        variables[name] = Var(name, (), "const", default=value)
    program = Program(
        name=model.name,
        vars=variables,
        eqns=[],
        loss=graph.loss,
        inputs=list(graph.inputs),
        params=list(graph.params),
        consts=list(graph.constants),
        description=model.description,
        meta={"kind": "graph", "init": {}},
    )
    dims = set(program.dims())
    for name in variables:
        if name in dims:
            raise SpecError(f"'{name}' names both a value and a size; rename one", key="graph")
    lowering = _Lowering(Builder(program), functions, dims, graph.steps)
    _check_function_names(model, [*variables, *lowering.targets, *dims])
    for index, text in enumerate(graph.steps):
        lowering.step(index, text)
    if graph.loss not in lowering.defined:
        hint = "an input or parameter" if graph.loss in variables else "not computed by any step"
        raise SpecError(
            f"loss '{graph.loss}' is {hint}; name the step that computes it", key="graph.loss"
        )
    loss_shape = program.vars[graph.loss].shape
    if loss_shape != ():
        raise SpecError(
            f"loss '{graph.loss}' must be a scalar, but has shape ({shape_text(loss_shape)}); "
            "reduce it with sum(...) or mean(...)",
            key="graph.loss",
        )
    # The prediction may read steps the loss does not: it is cut from all of them.
    predict = _output_program(program, graph.output, lowering.defined) if graph.output else None
    program = _prune(program)
    # A parameter the loss's steps name gets a gradient, zero where SymPy cancelled it (p - p);
    # one they never name is most likely a mistake.
    named = _named_by(graph.loss, lowering.mentions)
    for name in graph.params:
        if name not in named:
            raise SpecError(
                f"the loss '{graph.loss}' does not depend on parameter '{name}'; "
                "use it in a step or remove it from params",
                key=f"graph.params.{name}",
            )
    program.meta["kinds"] = _target_kinds(program)
    program.meta["labels"] = _target_labels(program)
    if predict is not None:  # an input keeps what it holds, and its labels, in predict too
        for key in ("kinds", "labels"):
            predict.meta[key] = {n: v for n, v in program.meta[key].items() if n in predict.inputs}
    return program, predict


def _output_program(program: Program, output: str, defined: set[str]) -> Program:
    """``predict``'s Program: the steps ``output`` depends on, taking only the inputs and
    constants they read (what a caller has at prediction time: no targets unless the output
    reads them)."""
    if output not in defined:
        hint = "an input, parameter or constant" if output in program.vars else "not a step"
        raise SpecError(
            f"output '{output}' is {hint}; name the step predict returns", key="graph.output"
        )
    predict = _prune(
        Program(
            name=program.name,
            vars=dict(program.vars),
            eqns=list(program.eqns),
            loss=output,
            inputs=list(program.inputs),
            params=list(program.params),
            consts=list(program.consts),
            meta={"kind": "graph", "init": {}, "output": output},
        )
    )
    read = {name for eqn in predict.eqns for name in eqn.args}
    predict.inputs = [n for n in predict.inputs if n in read]
    predict.consts = [n for n in predict.consts if n in read]
    unread = (set(program.inputs) | set(program.consts)) - read
    predict.vars = {k: v for k, v in predict.vars.items() if k not in unread}
    return predict


def _named_by(value: str, mentions: Mapping[str, set[str]]) -> set[str]:
    """Every name the step computing ``value`` uses, through the steps it uses."""
    found = {value}
    pending = [value]
    while pending:
        for name in mentions.get(pending.pop(), ()):
            if name not in found:
                found.add(name)
                pending.append(name)
    return found


def _check_function_names(model: Model, values: list[str]) -> None:
    """A ``[functions]`` entry is a module-level helper, a value a local of the same functions:
    they must not share a name, nor may a function take a name derived from a value (``dw``)."""
    for name in model.functions:
        for value in values:
            base = clashes(name, value)
            if base is not None:
                what = "the value" if base == value else f"'{base}', derived from the value"
                raise SpecError(
                    f"'{name}' collides with {what} '{value}' of the [graph]; rename one",
                    key=f"functions.{name}",
                )


def _target_kinds(program: Program) -> dict[str, str]:
    """Inputs that are the target of a loss which assumes something of it (one-hot rows)."""
    kinds = {}
    for eqn in program.eqns:
        loss = LOSSES.get(eqn.op)
        if loss is None or loss.target_kind == "real":
            continue
        target = eqn.args[1]
        if program.vars[target].role == "input":
            kinds[target] = loss.target_kind
    return kinds


def _target_labels(program: Program) -> dict[str, int | str]:
    """Targets of a loss that takes integer class labels for one-hot rows (softmax
    cross-entropy), as networks take them: input → its number of classes, the size of its last
    axis (an integer, or a size name bound at run time)."""
    return {
        name: program.shape(name)[-1]
        for name, kind in program.meta["kinds"].items()
        if kind == "one-hot" and program.shape(name)
    }


def _prune(program: Program) -> Program:
    """Keep only the assignments the loss depends on."""
    needed = {program.loss}
    kept = []
    for eqn in reversed(program.eqns):
        if eqn.out in needed:
            needed.update(eqn.args)
            kept.append(eqn)
    program.eqns = list(reversed(kept))
    produced = {e.out for e in program.eqns}
    declared = set(program.inputs) | set(program.params) | set(program.consts)
    program.vars = {k: v for k, v in program.vars.items() if k in produced or k in declared}
    return program


def _real(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` if its constants are finite real float64 numbers (``log(-1)`` is not)."""
    try:
        check_real(expr)
    except ParseError as err:
        raise SpecError(err.message) from None
    return expr


class _Lowering:
    """Turns parsed steps into assignments, tracking which names are defined so far."""

    def __init__(self, builder: Builder, functions: FunctionTable, dims: set[str], steps):
        self.builder = builder
        self.functions = functions
        self.dims = dims
        self.declared = set(builder.vars)
        self.defined: set[str] = set()
        self.arrays = {n for n, v in builder.vars.items() if v.role in ("input", "param")}
        """Names whose values are NumPy arrays (constants and numbers are Python floats)."""
        self.mentions: dict[str, set[str]] = {}
        """The names each step's text uses."""
        self.targets = {}
        for index, text in enumerate(steps):
            try:
                target, _ = parse_step(text)
            except ParseError:
                continue
            self.targets.setdefault(target, index)

    def step(self, index: int, text: str) -> None:
        key = f"graph.steps[{index}]"
        step = f"(step {quoted(text)})"
        try:
            target, tree = parse_step(text)
        except ParseError as err:
            raise SpecError(f"{err.message} {step}", key=key) from None
        try:
            check_name(target, "step name")
            if target in self.declared:
                raise SpecError(
                    f"'{target}' is declared as an input, parameter or constant; "
                    "steps cannot assign it"
                )
            if target in self.defined:
                raise SpecError(f"'{target}' is assigned twice; each name may be assigned once")
            if target in self.dims:
                raise SpecError(f"'{target}' is a size name; choose another step name")
            self.current = index
            self.step_target = target
            self.mentions[target] = set(names_in(tree))
            result = self.lower(tree, target=target)
            if result != target:
                value = self._named(result) if isinstance(result, str) else result
                self._materialize(value, target, exact_name=True)
            self.defined.add(target)
        except SpecError as err:
            raise SpecError(f"{err.message} {step}", key=key) from None

    # Lowering returns either a value name (a tensor op's output) or an elementwise _Value.
    def lower(self, node, target: str | None = None):
        if isinstance(node, P.Num):
            return _Value(_real(node.value), ())
        if isinstance(node, P.Name):
            return self._name(node.id)
        if isinstance(node, P.Neg):
            inner = self.value(node.operand)
            return _Value(-inner.expr, inner.shape, inner.arrays)
        if isinstance(node, P.BinOp):
            affine = self._affine(node, target)
            if affine is not None:
                return affine
            if node.op == "@":
                left, right = self.var(node.left), self.var(node.right)
                return self._tensor("matmul", [left, right], {}, target, "mm")
            return self._elementwise(node.op, self.value(node.left), self.value(node.right))
        if isinstance(node, P.Transpose):
            inner = self.var(node.operand)
            if len(self.builder.vars[inner].shape) < 2:
                return inner
            return self._tensor("transpose", [inner], {}, target, "T")
        if isinstance(node, P.Call):
            return self._call(node, target)
        raise SpecError(f"unsupported expression {node!r}")

    def _affine(self, node, target: str | None) -> str | None:
        """``A @ W + b`` with a matrix product and a bias row: the layer op, as in networks."""
        if node.op != "+":
            return None
        for product, bias in ((node.left, node.right), (node.right, node.left)):
            if not (
                isinstance(product, P.BinOp) and product.op == "@" and isinstance(bias, P.Name)
            ):
                continue
            a, w = self.var(product.left), self.var(product.right)
            shapes = [self.builder.vars[n].shape for n in (a, w)]
            b = self._name(bias.id)
            if (
                len(shapes[0]) == 2
                and len(shapes[1]) == 2
                and b.shape == shapes[1][1:]
                and bias.id in self.arrays
            ):
                return self._tensor("affine", [a, w, bias.id], {}, target, "pre")
        return None

    def value(self, node) -> _Value:
        result = self.lower(node)
        return self._named(result) if isinstance(result, str) else result

    def _named(self, name: str) -> _Value:
        arrays = frozenset({name}) if name in self.arrays else frozenset()
        return _Value(sympy.Symbol(name), self.builder.vars[name].shape, arrays)

    def var(self, node) -> str:
        result = self.lower(node)
        if isinstance(result, str):
            return result
        if isinstance(result.expr, sympy.Symbol) and result.expr.name in self.builder.vars:
            return result.expr.name
        if not result.expr.free_symbols:
            raise SpecError("a number cannot be the operand of @, .T, sum or a loss here")
        return self._materialize(result, self._temp(None, "t"))

    def _materialize(self, value: _Value, name: str, *, exact_name: bool = False) -> str:
        """An elementwise value as an assignment, of the shape of every array it read."""
        out = self.builder.ewise(
            value.expr, name=name, exact_name=exact_name, shape_of=value.arrays
        )
        if value.arrays:
            self.arrays.add(out)
        return out

    def _tensor(self, op: str, args: list[str], attrs: dict, target: str | None, suffix: str):
        """An op on arrays (``@``, ``.T``, a reduction, a loss): its result is an array."""
        out = self.builder.emit(
            op, args, attrs, name=self._temp(target, suffix), exact_name=target is not None
        )
        self.arrays.add(out)
        return out

    def _temp(self, target: str | None, suffix: str) -> str:
        """The step's own name for its top node, ``<step>_<suffix>`` for values inside it."""
        if target is not None:
            return target
        return f"{self.step_target}_{suffix}"

    def _name(self, name: str) -> _Value:
        if name in self.declared or name in self.defined:
            return self._named(name)
        if name in self.targets and self.targets[name] >= self.current:
            raise SpecError(f"'{name}' is used before the step that defines it")
        if name in self.dims:
            raise SpecError(f"'{name}' is a size, not a value")
        known = sorted(self.declared | self.defined)
        raise SpecError(f"undefined name '{name}'; defined so far: {', '.join(known)}")

    def _elementwise(self, op: str, left: _Value, right: _Value) -> _Value:
        try:
            shape = broadcast_shapes(left.shape, right.shape)
        except ValueError:
            raise SpecError(
                f"shapes ({shape_text(left.shape)}) and ({shape_text(right.shape)}) do not "
                f"broadcast in '{op}'"
            ) from None
        a, b = left.expr, right.expr
        arrays = left.arrays | right.arrays
        if op == "/" and b == 0:
            raise SpecError("division by the number zero")
        if op == "**" and a == 0 and b.is_number and b.is_negative:
            raise SpecError("zero raised to a negative power")
        if op not in ARITHMETIC:
            raise SpecError(f"unsupported operator {op}")
        return _Value(_real(ARITHMETIC[op](a, b)), shape, arrays)

    def _call(self, node, target: str | None):
        name, args = node.func, node.args
        if name in ("sum", "mean"):
            if len(args) != 1:
                raise SpecError(f"{name}(A) or {name}(A, axis=0|1) takes one array")
            source = self.var(args[0])
            shape = self.builder.vars[source].shape
            axis = node.axis
            if axis is not None and not -len(shape) <= axis < len(shape):
                raise SpecError(
                    f"axis={axis} is out of range for {name} of a value of shape "
                    f"({shape_text(shape)})"
                )
            if source not in self.arrays:
                return source  # the sum or mean of one number (a constant) is that number
            attrs = {} if axis is None else {"axis": axis % len(shape)}
            return self._tensor(name, [source], attrs, target, name)
        if node.axis is not None:
            raise SpecError(f"{name} takes no axis; only sum and mean do")
        if name in LOSSES:
            if len(args) != 2:
                raise SpecError(f"{name}(Z, T) takes two arrays, got {len(args)}")
            z, t = self.var(args[0]), self.var(args[1])
            if name == "softmax_cross_entropy" and not self.builder.vars[z].shape:
                raise SpecError(
                    "softmax_cross_entropy(Z, T) needs logits with classes along the last axis, "
                    "got a scalar; use sigmoid_binary_cross_entropy for one logit"
                )
            attrs = fused_loss_attrs(self.builder.vars[z].shape, "mean")
            return self._tensor(name, [z, t], attrs, target, "loss")
        if name in self.functions:
            entry = self.functions[name]
            if len(args) != entry.arity:
                takes = "one argument" if entry.arity == 1 else f"{entry.arity} arguments"
                raise SpecError(f"{name} takes {takes}, got {len(args)}")
            inner = [self.value(a) for a in args]
            try:
                shape = broadcast_shapes(*(v.shape for v in inner))
            except ValueError as err:
                raise SpecError(f"{name}: {err}") from None
            arrays = frozenset().union(*(v.arrays for v in inner))
            applied = _Value(_real(entry(*(v.expr for v in inner))), shape, arrays)
            if target is not None:
                return applied
            # A function inside a larger expression becomes a value of its own, so the backward
            # pass can reuse its output (tanh′ = 1 − tanh²) instead of computing it again.
            return self._materialize(applied, self._temp(None, name))
        known = sorted(step_calls(self.functions))
        raise SpecError(f"unknown function '{name}'; known: {', '.join(known)}")
