"""Expression printers: NumPy code, array API code, LaTeX and plain text, subclassed once
from SymPy's.

The NumPy printer writes code as ``ruff format`` would (spaces around binary operators,
``x**2`` hugged only for simple operands), so generated modules need no formatter pass, and it
prints numbers as Python scalars so NumPy keeps the caller's dtype (float32 stays float32). The
array API printer is the same but for what the standard spells otherwise: each function's
array API form, and ``xp.where`` with an array among its choices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sympy
from sympy.printing.latex import LatexPrinter
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

from symbp.emit.latex_names import latex_name
from symbp.ir.functions import ArrayApiForm, ElementwiseFunction, FunctionTable, NumpyForm


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
    """Products of two or more array values print with ``\\odot``; scalar factors stay in front."""

    def __init__(self, functions, symbol_names, arrays: frozenset[str]):
        super().__init__(functions, symbol_names)
        self.arrays = arrays

    def _as_ordered_terms(self, expr, order=None):
        # Positive terms first, as the generated code prints them: y - t, not -t + y.
        terms = super()._as_ordered_terms(expr, order=order)
        return [t for t in terms if not t.could_extract_minus_sign()] + [
            t for t in terms if t.could_extract_minus_sign()
        ]

    def _is_array(self, factor: sympy.Expr) -> bool:
        return any(s.name in self.arrays for s in factor.free_symbols) and not (
            factor.is_Pow and factor.exp.is_negative
        )

    def _print_Mul(self, expr):
        factors = expr.as_ordered_factors()
        arrays = [f for f in factors if self._is_array(f)]
        if len(arrays) < 2:
            return super()._print_Mul(expr)
        scalars = [f for f in factors if not self._is_array(f)]
        body = r" \odot ".join(self.parenthesize(f, PRECEDENCE["Mul"]) for f in arrays)
        if not scalars:
            return body
        coeff = sympy.Mul(*scalars)
        if coeff == -1:
            return "- " + body
        head = self.parenthesize(coeff, PRECEDENCE["Mul"])
        return rf"{head} \left({body}\right)"


class LatexPrinters(Printers):
    """Printers for the document: value names in math notation, ``\\odot`` between arrays."""

    def __init__(self, functions, latex_names, arrays: frozenset[str]):
        super().__init__(functions, latex_names)
        self._latex = HadamardLatexPrinter(
            functions, {sympy.Symbol(k): v for k, v in self._latex_names.items()}, arrays
        )

    def latex_symbol(self, name: str, bar: bool = False) -> str:
        return latex_name(name, bar=bar)
