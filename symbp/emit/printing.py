"""Expression printers: NumPy code, array API code, LaTeX and plain text, subclassed once
from SymPy's.

The NumPy printer writes code as ``ruff format`` would (spaces around binary operators,
``x**2`` hugged only for simple operands), so generated modules need no formatter pass, and it
prints numbers as Python scalars so NumPy keeps the caller's dtype (float32 stays float32). The
array API printer is the same but for what the standard spells otherwise: each function's
array API form, and ``xp.where`` with an array among its choices.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import sympy
from sympy.printing.latex import LatexPrinter
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

from symbp.emit.latex_names import latex_name, split_superscript
from symbp.ir import display
from symbp.ir.functions import ArrayApiForm, ElementwiseFunction, FunctionTable, NumpyForm
from symbp.ir.losses import LOSSES


def _is_simple(expr: sympy.Expr) -> bool:
    """Operands that ruff hugs in a power: names and non-negative numbers."""
    return expr.is_Symbol or (expr.is_Integer and expr >= 0)


def _fraction(expr: sympy.Mul) -> tuple[list[sympy.Expr], list[sympy.Expr]]:
    """The factors of a product above and below the fraction bar, as one writes them."""
    numer, denom = [], []
    for factor in expr.as_ordered_factors():
        if factor.is_Rational and factor.q != 1:
            if factor.p != 1:
                numer.append(sympy.Integer(factor.p))
            denom.append(sympy.Integer(factor.q))
        elif factor.is_Pow and factor.exp.is_Rational and factor.exp.is_negative:
            denom.append(sympy.Pow(factor.base, -factor.exp))
        else:
            numer.append(factor)
    return numer, denom


def _fill(template: str, printed: list[str], args: tuple) -> str:
    """A function's NumPy template with its arguments: an argument that the template uses
    twice (``{x} * sigmoid({x})``) is bracketed where it stands bare, not where it is already
    a call's whole argument."""
    code = template
    for key, text, arg in zip("xy", printed, args, strict=False):
        slot, whole = "{" + key + "}", "(" + "{" + key + "})"
        bare = f"({text})" if template.count(slot) > 1 and not arg.is_Symbol else text
        code = code.replace(whole, "(\0)").replace(slot, bare).replace("(\0)", f"({text})")
    return code


def _first(items: list[sympy.Expr], buffer: sympy.Symbol) -> list[sympy.Expr]:
    """``items`` with ``buffer`` moved to the front, so ``np.add(dH1, dH2, out=dH1)`` reads."""
    return sorted(items, key=lambda item: item != buffer)


class CodePrinter(NumPyPrinter):
    """Right-hand sides for the generated module; function calls come from the function table."""

    def __init__(self, functions: FunctionTable):
        super().__init__({"fully_qualified_modules": False, "inline": True})
        self.functions = functions
        self.used_functions: set[str] = set()

    def doprint_expr(self, expr: sympy.Expr) -> str:
        return self._print(expr)

    def into(self, expr: sympy.Expr, buffer: str) -> str | None:
        """``expr`` with its outermost operation writing into ``buffer`` (``out=``), or None.

        Only the outermost ufunc writes there; inner operations make their own temporaries
        (which NumPy reuses for the next operation where it can).
        """
        out = sympy.Symbol(buffer)
        p = self._print
        if isinstance(expr, sympy.Add):
            first, *rest = _first(self._terms(expr), out)
            if first.could_extract_minus_sign():
                return None
            remainder = sympy.Add(*rest)
            if remainder.could_extract_minus_sign():
                return f"np.subtract({p(first)}, {p(-remainder)}, out={buffer})"
            return f"np.add({p(first)}, {p(remainder)}, out={buffer})"
        if isinstance(expr, sympy.Mul):
            if expr.could_extract_minus_sign():
                return None
            numer, denom = _fraction(expr)
            if denom:
                top, bottom = sympy.Mul(*numer), sympy.Mul(*denom)
                return f"np.divide({p(top)}, {p(bottom)}, out={buffer})"
            first, *rest = _first(numer, out)
            return f"np.multiply({p(first)}, {p(sympy.Mul(*rest))}, out={buffer})"
        if isinstance(expr, sympy.Pow) and expr.exp == 2:
            return f"np.square({p(expr.base)}, out={buffer})"
        if isinstance(expr, sympy.Piecewise) and len(expr.args) == 2:
            (value, condition), (otherwise, _) = expr.args
            if otherwise == 0 and condition is not sympy.true:
                # Where the condition fails the value is 0: a multiplication by the mask.
                return f"np.multiply({p(value)}, {p(condition)}, out={buffer})"
            return None
        if isinstance(expr, sympy.Function):
            entry = self.functions.by_class(type(expr))
            if entry is None or entry.numpy.out is None:
                return None
            self.used_functions.add(entry.name)
            self.used_functions.update(entry.numpy.needs)
            return _fill(entry.numpy.out, [p(a) for a in expr.args], expr.args).replace(
                "{out}", buffer
            )
        return None

    def _terms(self, expr: sympy.Add) -> list[sympy.Expr]:
        """Terms in printing order: positive terms first, so that y − t reads as written."""
        ordered = expr.as_ordered_terms()
        return [t for t in ordered if not t.could_extract_minus_sign()] + [
            t for t in ordered if t.could_extract_minus_sign()
        ]

    def _print(self, expr, **kwargs):
        # A constant such as sqrt(2/π) is printed as a Python float: NumPy treats Python
        # scalars as weak, so float32 arrays stay float32 (np.sqrt(2) would be float64).
        if isinstance(expr, sympy.Expr) and expr.is_number and not expr.is_Rational:
            return repr(float(expr))
        # Every function of the table prints as the table says, SymPy's own (exp, sin) too.
        if isinstance(expr, sympy.Function) and self.functions.by_class(type(expr)):
            return self._print_Function(expr)
        return super()._print(expr, **kwargs)

    def _form(self, entry: ElementwiseFunction) -> NumpyForm | ArrayApiForm:
        """The entry's form this printer writes."""
        return entry.numpy

    # atoms
    def _print_Symbol(self, expr):
        return expr.name

    def _print_Integer(self, expr):
        return str(int(expr))

    def _print_Rational(self, expr):
        return f"{expr.p} / {expr.q}"

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Pi(self, expr):
        return "np.pi"

    def _print_Exp1(self, expr):
        return "np.e"

    def _print_BooleanTrue(self, expr):
        return "True"

    def _paren(self, expr, level: int, strict: bool = False) -> str:
        text = self._print(expr)
        p = precedence(expr)
        if p < level or (strict and p <= level):
            return f"({text})"
        return text

    # arithmetic
    def _print_Add(self, expr):
        terms = self._terms(expr)
        if terms[0].could_extract_minus_sign():
            out = "-" + self._paren(-terms[0], PRECEDENCE["Add"], strict=True)
            for term in terms[1:]:
                out += " - " + self._paren(-term, PRECEDENCE["Add"], strict=True)
            return out
        out = self._paren(terms[0], PRECEDENCE["Add"])
        for term in terms[1:]:
            if term.could_extract_minus_sign():
                out += " - " + self._paren(-term, PRECEDENCE["Add"], strict=True)
            else:
                out += " + " + self._paren(term, PRECEDENCE["Add"])
        return out

    def _print_Mul(self, expr):
        if expr.could_extract_minus_sign():
            inner = -expr
            text = self._paren(inner, PRECEDENCE["Mul"])
            return "-" + text
        numer, denom = _fraction(expr)
        top = " * ".join(self._paren(f, PRECEDENCE["Mul"]) for f in numer) if numer else "1"
        if not denom:
            return top
        if len(denom) == 1:
            bottom = self._paren(denom[0], PRECEDENCE["Mul"], strict=True)
        else:
            bottom = "(" + " * ".join(self._paren(f, PRECEDENCE["Mul"]) for f in denom) + ")"
        return f"{top} / {bottom}"

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.base, expr.exp
        if exp == sympy.Rational(1, 2):
            return f"np.sqrt({self._print(base)})"
        if exp.is_Rational and exp.is_negative:
            return "1 / " + self._paren(sympy.Pow(base, -exp), PRECEDENCE["Mul"], strict=True)
        b = self._paren(base, PRECEDENCE["Pow"], strict=True)
        e = self._paren(exp, PRECEDENCE["Pow"])
        if _is_simple(base) and _is_simple(exp):
            return f"{b}**{e}"
        return f"{b} ** {e}"

    # functions
    def _print_Function(self, expr):
        entry = self.functions.by_class(type(expr))
        if entry is None:
            raise ValueError(f"no NumPy form for function {type(expr).__name__}")
        form = self._form(entry)
        self.used_functions.add(entry.name)
        self.used_functions.update(form.needs)
        return _fill(form.expr, [self._print(a) for a in expr.args], expr.args)

    def _print_Piecewise(self, expr):
        *branches, (last, cond) = expr.args
        if cond is not sympy.true:
            raise ValueError("a Piecewise needs a final True branch")
        out = self._print(last)
        for value, condition in reversed(branches):
            out = f"np.where({self._print(condition)}, {self._print(value)}, {out})"
        return out

    def _print_And(self, expr):
        return " & ".join(self._operand(a) for a in expr.args)

    def _print_Or(self, expr):
        return " | ".join(self._operand(a) for a in expr.args)

    def _print_Not(self, expr):
        return f"~{self._operand(expr.args[0])}"

    def _operand(self, condition) -> str:
        """A condition as an operand of ``&``, ``|`` or ``~``, which bind tighter than ``>``."""
        text = self._print(condition)
        return text if condition.is_Symbol else f"({text})"

    def _print_Relational(self, expr):
        return f"{self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)}"


class ArrayApiPrinter(CodePrinter):
    """Right-hand sides for the array API module: the functions' array API forms, the
    standard's ``xp.sqrt``, ``xp.where`` and ``xp.astype`` for choices; no ``out=`` (some
    arrays cannot be written)."""

    def _form(self, entry: ElementwiseFunction) -> NumpyForm | ArrayApiForm:
        return entry.array_api

    def into(self, expr: sympy.Expr, buffer: str) -> str | None:
        return None

    def _print_Pow(self, expr, rational=False):
        if expr.exp == sympy.Rational(1, 2):
            return f"xp.sqrt({self._print(expr.base)})"
        return super()._print_Pow(expr, rational)

    def _print_Piecewise(self, expr):
        *branches, (last, cond) = expr.args
        if cond is not sympy.true:
            raise ValueError("a Piecewise needs a final True branch")
        if len(branches) == 1 and (last == 0 or _numbers(expr)):
            # A value where a condition holds and 0 elsewhere (relu′: g if r > 0), or a choice
            # between two numbers, as the condition's 0 or 1 in the values' dtype, scaled: the
            # standard multiplies no float by a boolean, and NumPy's astype and multiply take
            # half the time of its where (and give what the NumPy module's multiply gives).
            (value, condition) = branches[0]
            indicator = f"xp.astype({self._print(condition)}, {_carrier(condition)}.dtype)"
            if not value.is_number:
                return f"({self._paren(value, PRECEDENCE['Mul'])} * {indicator})"
            step = value - last
            scaled = indicator if step == 1 else f"{self._print(step)} * {indicator}"
            if last == 0:
                return scaled if step == 1 else f"({scaled})"
            return f"({self._print(last)} + {scaled})"
        out, number = self._print(last), last.is_number
        for value, condition in reversed(branches):
            if number and value.is_number:
                # xp.where needs an array among its choices: the other one, shaped and typed
                # like a value the condition reads (so the result is of the values' dtype).
                out = f"xp.full_like({_carrier(condition)}, {out})"
            out = f"xp.where({self._print(condition)}, {self._print(value)}, {out})"
            number = False
        return out


def _unbracketed(code: str) -> str:
    """``code`` without brackets around all of it, which ``ruff format`` would remove."""
    if not code.startswith("("):
        return code
    depth = 0
    for i, char in enumerate(code):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return code[1:-1] if i == len(code) - 1 else code
    return code


def _numbers(choice: sympy.Piecewise) -> bool:
    """Whether every value a Piecewise chooses between is a number (a derivative's 0 and 1)."""
    return all(value.is_number for value, _ in choice.args)


def _carrier(condition: sympy.Basic) -> str:
    """A value a condition reads (not a size): an array in the array API module."""
    names = sorted(s.name for s in condition.free_symbols if not s.is_integer)
    if not names:
        raise ValueError(f"the condition {condition} reads no value")
    return names[0]


def _dtype_carrier(expr: sympy.Expr, arrays: frozenset[str]) -> str | None:
    """The array whose dtype ``expr`` must be cast to, if it reads arrays only in conditions
    (a condition itself stays boolean)."""
    if isinstance(expr, sympy.logic.boolalg.Boolean):
        return None
    conditions = list(expr.atoms(sympy.core.relational.Relational))
    outside = expr.xreplace({c: sympy.Dummy() for c in conditions}).free_symbols
    if any(s.name in arrays for s in outside):
        return None
    inside = sorted(s.name for c in conditions for s in c.free_symbols if s.name in arrays)
    return inside[0] if inside else None


class TextPrinter(StrPrinter):
    """Equations for docstrings: SymPy's ``str`` with the table's function names."""

    def __init__(self, functions: FunctionTable):
        super().__init__({"order": None})
        self.functions = functions

    def _as_ordered_terms(self, expr, order=None):
        terms = super()._as_ordered_terms(expr, order=order)
        return [t for t in terms if not t.could_extract_minus_sign()] + [
            t for t in terms if t.could_extract_minus_sign()
        ]

    def _print_Function(self, expr):
        entry = self.functions.by_class(type(expr))
        name = entry.name if entry is not None else type(expr).__name__
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"

    def _print_Piecewise(self, expr):
        parts = [f"{self._print(v)} if {self._print(c)}" for v, c in expr.args[:-1]]
        parts.append(f"{self._print(expr.args[-1][0])} otherwise")
        return "(" + ", ".join(parts) + ")"


class MathLatexPrinter(LatexPrinter):
    """LaTeX with value names as symbols (``W1`` → ``W_{1}``) and the table's function names."""

    def __init__(self, functions: FunctionTable, symbol_names: Mapping[sympy.Symbol, str]):
        super().__init__({"symbol_names": dict(symbol_names), "mul_symbol": None})
        self.functions = functions

    def _print_Function(self, expr, exp=None):
        entry = self.functions.by_class(type(expr))
        if entry is None:
            return super()._print_Function(expr, exp)
        if "{x}" in entry.latex:  # a form around the argument: \\sqrt{z}, |z|
            return entry.latex.format(**dict(zip("xy", map(self._print, expr.args), strict=False)))
        arg = ", ".join(self._print(a) for a in expr.args)
        if entry.name == "identity":
            return arg
        head = entry.latex
        if exp is not None:
            head = f"{head}^{{{exp}}}"
        return f"{head}\\left({arg}\\right)"


class Printers:
    """The printers one Program is shown with; op forms call these for their expressions.

    ``arrays`` names the values that are NumPy arrays when the module runs (the rest are
    Python numbers: constants, and values computed from constants alone). ``shapes`` gives
    each value's shape, for forms that differ by rank.
    """

    def __init__(
        self,
        functions: FunctionTable,
        latex_names: Mapping[str, str] | None = None,
        arrays: Iterable[str] = (),
        shapes: Mapping[str, tuple] | None = None,
    ):
        self.functions = functions
        self.arrays = frozenset(arrays)
        self.shapes = dict(shapes or {})
        self.code = CodePrinter(functions)
        self.xp_code = ArrayApiPrinter(functions)
        self.reads_dtype = False
        """Whether an array API value printed so far reads ``dtype`` and ``dev``."""
        self._numpy_printed: dict[sympy.Expr, str] = {}
        self._values_printed: dict[tuple, str] = {}
        self._text = TextPrinter(functions)
        self._latex_names = dict(latex_names or {})
        self._latex = MathLatexPrinter(
            functions, {sympy.Symbol(k): v for k, v in self._latex_names.items()}
        )

    def numpy(self, expr: sympy.Expr) -> str:
        # Each function of a module prints its assignments, and the buffer planner asks
        # whether one is a bare name: the same expression is printed several times.
        if expr not in self._numpy_printed:
            self._numpy_printed[expr] = self.code.doprint_expr(expr)
        return self._numpy_printed[expr]

    def numpy_value(self, expr: sympy.Expr, args: Iterable[str]) -> str:
        """An elementwise assignment's right-hand side: an array of the parameters' dtype and
        of the broadcast shape of all ``args``, also those SymPy simplified away (``W - W``
        prints as ``0 + np.zeros_like(W)``). A value that reads arrays only in conditions
        (``np.where(r > 0, 1, 0)``) would be integer, so it takes the dtype of such an array.
        """
        key = (expr, tuple(args))
        if key not in self._values_printed:
            self._values_printed[key] = self._numpy_value(expr, key[1])
        return self._values_printed[key]

    def _numpy_value(self, expr: sympy.Expr, args: tuple[str, ...]) -> str:
        code = self.numpy(expr)
        if not expr.is_Atom and not self.arrays.intersection(args):
            # Of constants alone: a Python float, which NumPy treats as weak (float32 stays).
            return f"float({code})"
        used = {s.name for s in expr.free_symbols}
        missing = [a for a in args if a not in used and a in self.arrays]
        if missing:
            zeros = [f"np.zeros_like({a})" for a in missing]
            return " + ".join(zeros if expr == 0 else [code, *zeros])
        carrier = _dtype_carrier(expr, self.arrays)
        return code if carrier is None else f"np.asarray({code}, dtype={carrier}.dtype)"

    def numpy_into(self, expr: sympy.Expr, buffer: str) -> str | None:
        return self.code.into(expr, buffer)

    def array_api(self, expr: sympy.Expr) -> str:
        return _unbracketed(self.xp_code.doprint_expr(expr))

    def array_api_value(self, expr: sympy.Expr, args: Iterable[str]) -> str:
        """An elementwise assignment's right-hand side in the array API module, where every
        value is an array (constants are 0-d arrays of the parameters' dtype): of the
        broadcast shape of all ``args``, those SymPy simplified away included."""
        code = self.array_api(expr)
        used = {s.name for s in expr.free_symbols}
        missing = [f"xp.zeros_like({a})" for a in args if a not in used]
        if missing:
            return " + ".join(missing if expr == 0 else [code, *missing])
        if not any(not s.is_integer for s in expr.free_symbols):
            # A number (``p - p`` simplified away): an array of the parameters' dtype and device.
            self.reads_dtype = True
            return f"xp.asarray({code}, dtype=dtype, device=dev)"
        return code

    def rank(self, name: str) -> int:
        return len(self.shapes[name])

    def latex(self, expr: sympy.Expr) -> str:
        return self._latex.doprint(expr)

    def latex_name(self, name: str) -> str:
        return self._latex_names.get(name, name)

    def text(self, expr: sympy.Expr) -> str:
        return self._text.doprint(expr)


class HadamardLatexPrinter(MathLatexPrinter):
    """The document's mathematics: products of two or more arrays print with ``\\odot`` and
    powers of arrays as ``(·)^{\\circ 2}`` (scalar factors stay in front), and the nodes of
    :mod:`symbp.ir.display` (matrix products, transposes, 𝟏, adjoints, derivatives) as a
    lecturer writes them.

    ``ranks`` gives each array value's number of axes (a set of names means rank 1);
    ``bar_names`` the LaTeX of adjoints where it is not the bar over the name (seed 003's
    G_i); ``symbols`` a notation's templates for its symbols (``"z^{{{l}}}"``).
    """

    def __init__(
        self,
        functions,
        symbol_names,
        arrays: Mapping[str, int] | Iterable[str],
        bar_names: Mapping[str, str] | None = None,
        symbols: Mapping[str, str] | None = None,
        adjoints: Iterable[str] = (),
    ):
        super().__init__(functions, symbol_names)
        self.adjoints = frozenset(adjoints)
        """Names of backward values that are adjoints: they lead a product, as v̄ does."""
        self.ranks = dict(arrays) if isinstance(arrays, Mapping) else dict.fromkeys(arrays, 1)
        self.arrays = frozenset(n for n, r in self.ranks.items() if r)
        self.names = {s.name: tex for s, tex in dict(symbol_names).items()}
        self.bar_names = dict(bar_names or {})
        self.symbols = dict(symbols or {})

    def _print(self, expr, **kwargs):
        # SymPy skips the printing methods of a function's base classes when the subclass
        # has another name; the named nodes (σ′ is FPrime_sigmoid) print by their base.
        if isinstance(expr, display.Node):
            for cls in type(expr).__mro__:
                method = getattr(self, f"_print_{cls.__name__}", None)
                if method is not None:
                    text = method(expr)
                    if kwargs.get("exp") is not None:  # SymPy prints f(x)**2 as f^2(x)
                        return rf"\left({text}\right)^{{{kwargs['exp']}}}"
                    return text
        return super()._print(expr, **kwargs)

    def _print_Plus(self, expr):
        out = self._print(expr.args[0])
        for term in expr.args[1:]:
            if term.could_extract_minus_sign():
                out += " - " + self.parenthesize(-term, PRECEDENCE["Add"], strict=True)
            else:
                out += " + " + self.parenthesize(term, PRECEDENCE["Add"])
        return out

    def _print_Times(self, expr):
        factors = list(expr.args)
        sign = ""
        if factors[0] == -1:
            sign, factors = "-", factors[1:]
        parts = []
        for factor in factors:
            text = self._print(factor)
            if isinstance(factor, sympy.Add | display.Plus) or factor.could_extract_minus_sign():
                text = rf"\left({text}\right)"
            parts.append(text)
        glue = r" \odot " if sum(self._is_array(f) for f in factors) > 1 else " "
        return sign + glue.join(parts)

    def _as_ordered_terms(self, expr, order=None):
        # Positive terms first, as the generated code prints them: y - t, not -t + y; a bias
        # broadcast over the rows (𝟏bᵀ) after the product it is added to.
        terms = super()._as_ordered_terms(expr, order=order)
        return sorted(terms, key=lambda t: (t.could_extract_minus_sign(), _ones_first(t)))

    def _rank(self, expr) -> int:
        return display.rank(expr, self.ranks)

    def _is_array(self, factor: sympy.Expr) -> bool:
        return self._rank(factor) > 0 and not (factor.is_Pow and factor.exp.is_negative)

    def _print_Mul(self, expr):
        factors = expr.as_ordered_factors()
        sums = [f for f in factors if isinstance(f, display.IndexSum)]
        if len(sums) == 1 and len(factors) == 2 and factors[0].is_Pow:
            # (1/m) Σₓ Cₓ, as the seeds write a mean, not a fraction over the sum
            return rf"\frac{{1}}{{{self._print(1 / factors[0])}}} {self._print(sums[0])}"
        arrays = [f for f in factors if self._is_array(f)]
        below = [f for f in factors if f.is_Pow and f.exp.is_negative and self._rank(f.base)]
        if len(arrays) < 2 and not below:
            return self._in_order(expr, factors)
        scalars = [f for f in factors if not self._is_array(f) and f not in below]
        body = self._hadamard(arrays) if arrays else "1"
        if below:  # an elementwise quotient of arrays
            body = rf"\frac{{{body}}}{{{self._hadamard([1 / f for f in below])}}}"
            arrays = [body]
        if not scalars:
            return body
        coeff = sympy.Mul(*scalars)
        if coeff == -1:
            return "- " + body
        head = self.parenthesize(coeff, PRECEDENCE["Mul"])
        return rf"{head} \left({body}\right)" if len(arrays) > 1 else f"{head} {body}"

    def _in_order(self, expr, factors) -> str:
        """SymPy's product, with numbers and adjoints first and derivatives last: z̄ x and
        ȳ σ′(z) as seed 004 writes them, σ′(z)(w₃ ∂C/∂z′ + …) as seed 001 does."""
        rank = {f: _factor_rank(f, self.adjoints) for f in factors}
        ordered = sorted(factors, key=lambda f: rank[f])  # stable: SymPy's order otherwise
        if ordered == list(factors) or len(set(rank.values())) == 1:
            return super()._print_Mul(expr)
        saved = self._settings["order"]
        self._settings["order"] = "none"
        try:
            return super()._print_Mul(sympy.Mul(*ordered, evaluate=False))
        finally:
            self._settings["order"] = saved

    def _hadamard(self, factors) -> str:
        # Adjoints first and derivatives of functions last (G ⊙ σ′(Z), (wδ) ⊙ σ′(z), as the
        # seeds write the backward step).
        factors = sorted(factors, key=lambda f: _hadamard_rank(f, self.adjoints))
        return r" \odot ".join(self.parenthesize(f, PRECEDENCE["Mul"]) for f in factors)

    def _print_Pow(self, expr):
        base, exp = expr.base, expr.exp
        if self._rank(base) and exp.is_Integer and exp > 1:
            return rf"{self._wrapped(base)}^{{\circ {exp}}}"
        return super()._print_Pow(expr)

    def _wrapped(self, expr) -> str:
        """``expr`` bracketed unless it prints as one symbol (a name, a call, 𝟏)."""
        text = self._print(expr)
        if split_superscript(text) is not None:  # W̄^{(Z)}: no second superscript on it
            return rf"\left({text}\right)"
        if isinstance(expr, sympy.Symbol | display.Bar | display.Ones | display.OnesLike):
            return "{" + text + "}"
        if isinstance(expr, sympy.Function) and not isinstance(expr, display.MatProd):
            return "{" + text + "}"
        if isinstance(expr, display.Symbolic | display.Tr):
            return "{" + text + "}"
        return rf"\left({text}\right)"

    # ---- the nodes of symbp.ir.display
    def _name(self, name: str) -> str:
        return self.names.get(name, latex_name(name))

    def _print_Bar(self, expr):
        name = expr.args[0].name
        return self.bar_names.get(name) or latex_name_bar(self._name(name), name)

    def _print_MatProd(self, expr):
        factors: list = []
        stack = list(expr.args)
        while stack:
            f = stack.pop(0)
            if isinstance(f, display.MatProd):
                stack[:0] = list(f.args)
            else:
                factors.append(f)
        parts = []
        for f in factors:
            text = self._print(f)
            if isinstance(f, sympy.Add | sympy.Mul) or (f.is_Pow and not self._rank(f.base)):
                text = rf"\left({text}\right)"
            parts.append(text)
        return " ".join(parts)

    def _print_Tr(self, expr):
        base = expr.args[0]
        return rf"{self._wrapped(base)}^{{\top}}"

    def _print_Ones(self, expr):
        return r"\mathbf{1}"

    _print_OnesLike = _print_Ones

    def _print_Softmax(self, expr):
        return rf"\operatorname{{softmax}}\left({self._print(expr.args[0])}\right)"

    def _print_MeanAll(self, expr):
        return rf"\operatorname{{mean}}\left({self._print(expr.args[0])}\right)"

    def _print_Norm2(self, expr):
        return rf"\lVert {self._print(expr.args[0])} \rVert^{{2}}"

    def _print_ChainTerm(self, expr):
        child, value = expr.args
        g = self._print(display.Bar(child))
        return rf"{g}\,\frac{{\partial {self._print(child)}}}{{\partial {self._print(value)}}}"

    def _print_Deriv(self, expr):
        f, x = expr.args
        return rf"\frac{{\partial {self._print(f)}}}{{\partial {self._print(x)}}}"

    _print_LocalDeriv = _print_Deriv

    def _print_Inner(self, expr):
        a, b = (self._print(x) for x in expr.args)
        return rf"\left\langle {a}, {b} \right\rangle"

    def _print_Column(self, expr):
        return self._print(expr.args[0])

    def _print_Tangent(self, expr):
        return rf"\partial_{{V}} {self._print(expr.args[0])}"

    def _print_HessVec(self, expr):
        return rf"\left(H V\right)_{{{self._print(expr.args[0])}}}"

    def _print_Entry(self, expr):
        base, *index = expr.args
        text = self._print(base)
        if not isinstance(base, sympy.Symbol | display.Bar | display.Symbolic):
            text = rf"\left({text}\right)"
        elif "_" in text:
            text = f"({text})"
        written = [str(int(i) + 1) if i.is_Integer else self._print(i) for i in index]
        glue = (
            ","
            if any(len(w) > 1 or i.is_Integer for w, i in zip(written, index, strict=True))
            else ""
        )
        return f"{text}_{{{glue.join(written)}}}"

    def _print_IndexSum(self, expr):
        body, k, _ = expr.args
        text = self._print(body)
        if isinstance(body, sympy.Add):
            text = rf"\left({text}\right)"
        return rf"\sum_{{{self._print(k)}}} {text}"

    def _print_Ident(self, expr):
        return rf"I_{{{self._print(expr.args[0])}{self._print(expr.args[1])}}}"

    def _print_FPrime(self, expr):
        entry = self.functions[type(expr).name]
        head = entry.latex or r"\operatorname{id}"
        return rf"{head}'\left({self._print(expr.args[0])}\right)"

    def _print_FView(self, expr):
        entry = self.functions[type(expr).name]
        return self._print(entry.cls(*expr.args))

    def _print_LossTerm(self, expr):
        z, t, count = expr.args
        loss = LOSSES[type(expr).name]
        body = loss.latex_body.format(z="{" + self._print(z) + "}", t="{" + self._print(t) + "}")
        return body if count == 1 else rf"\frac{{1}}{{{self._print(count)}}}{body}"

    def _print_Mark(self, expr):
        inner, label = expr.args
        return rf"\underbrace{{{self._print(inner)}}}_{{\text{{{label}}}}}"

    def _print_Symbolic(self, expr):
        layer, sample = expr.args
        kind = type(expr).name
        key = kind + {display.COLUMNS: "@cols", display.BATCH: "@rows"}.get(sample, "")
        if sample.is_Symbol and sample not in (display.COLUMNS, display.BATCH, display.SAMPLE):
            key = kind + "@indexed"  # a sample counted by a sum: C_k
        template = self.symbols.get(key) or self.symbols.get(kind) or kind + "^{{{l}}}"
        return self._layered(template, layer)

    def _layered(self, template: str, layer: sympy.Expr) -> str:
        return template.format(
            l=self._print(layer), l1=self._print(layer + 1), lm1=self._print(layer - 1)
        )

    def _print_LayerFn(self, expr):
        layer, argument = expr.args
        name = type(expr).name
        base = name.removesuffix("_prime")
        head = self.symbols.get(f"{base}@{layer}") if layer.is_Integer else None
        head = self._layered(head or self.symbols.get(base, r"\sigma_{{{l}}}"), layer)
        prime = "'" if name.endswith("_prime") else ""
        return rf"{head}{prime}\left({self._print(argument)}\right)"


def _factor_rank(factor: sympy.Basic, adjoints: frozenset[str] = frozenset()) -> int:
    if factor.is_Number:
        return -1
    if isinstance(factor, display.Bar) or (factor.is_Symbol and factor.name in adjoints):
        return 0
    if factor.has(display.Deriv):  # ∂C/∂z′ after its factors: w₃ ∂C/∂z′, σ′(z)(…)
        return 3
    return 2


def _ones_first(term: sympy.Basic) -> bool:
    return isinstance(term, display.MatProd) and isinstance(term.args[0], display.Ones)


_ADJOINT_KINDS = ("act_adj", "pre_adj", "cost_grad")


def _adjoint(factor: sympy.Basic, adjoints: frozenset[str] = frozenset()) -> bool:
    if isinstance(factor, display.Bar | display.Deriv | display.ChainTerm):
        return True
    if factor.is_Symbol:
        return factor.name in adjoints
    if isinstance(factor, display.Symbolic):
        return type(factor).name in _ADJOINT_KINDS
    return isinstance(factor, display.MatProd) and any(_adjoint(a, adjoints) for a in factor.args)


def _hadamard_rank(factor: sympy.Basic, adjoints: frozenset[str]) -> int:
    if _adjoint(factor, adjoints):
        return 0
    if isinstance(factor, display.FPrime | display.LayerFn) or factor.has(sympy.Piecewise):
        return 2
    return 1


def latex_name_bar(tex: str, name: str) -> str:
    """The adjoint's LaTeX from a name's: the bar over its base letter (``\\bar{W}_{1}``), over
    the whole symbol where that is more than a letter and a subscript (``\\overline{z'}``)."""
    if tex == latex_name(name):
        return latex_name(name, bar=True)
    simple = re.fullmatch(r"(\\[A-Za-z]+|[A-Za-z])(_\{.*\})?", tex)
    if simple is not None:
        return rf"\bar{{{simple.group(1)}}}{simple.group(2) or ''}"
    return rf"\overline{{{tex}}}"


class LatexPrinters(Printers):
    """Printers for the document: value names in math notation, ``\\odot`` between arrays,
    the display nodes as mathematics (see :class:`HadamardLatexPrinter`)."""

    def __init__(
        self,
        functions,
        latex_names,
        arrays: Mapping[str, int] | Iterable[str],
        bar_names: Mapping[str, str] | None = None,
        symbols: Mapping[str, str] | None = None,
        adjoints: Iterable[str] = (),
    ):
        super().__init__(functions, latex_names)
        self._latex = HadamardLatexPrinter(
            functions,
            {sympy.Symbol(k): v for k, v in self._latex_names.items()},
            arrays,
            bar_names,
            symbols,
            adjoints,
        )

    @property
    def latex_printer(self) -> HadamardLatexPrinter:
        """The printer itself, for layout that splits an expression where it prints it."""
        return self._latex

    def latex_symbol(self, name: str, bar: bool = False) -> str:
        return latex_name(name, bar=bar)
