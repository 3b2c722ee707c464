"""Names and text as LaTeX: ``W1`` → ``W_{1}``, ``lam`` → ``\\lambda``, adjoints ``dZ1`` →
``\\bar{Z}_{1}``, and any user text escaped for text mode (Unicode mapped, never dropped)."""

from __future__ import annotations

import re
import unicodedata

from symbp.ir.program import Program

GREEK = {
    "alpha": r"\alpha",
    "beta": r"\beta",
    "gamma": r"\gamma",
    "delta": r"\delta",
    "epsilon": r"\epsilon",
    "eps": r"\epsilon",
    "zeta": r"\zeta",
    "eta": r"\eta",
    "theta": r"\theta",
    "iota": r"\iota",
    "kappa": r"\kappa",
    "lam": r"\lambda",
    "lmbda": r"\lambda",
    "lambda": r"\lambda",
    "mu": r"\mu",
    "nu": r"\nu",
    "xi": r"\xi",
    "pi": r"\pi",
    "rho": r"\rho",
    "sigma": r"\sigma",
    "tau": r"\tau",
    "upsilon": r"\upsilon",
    "phi": r"\phi",
    "chi": r"\chi",
    "psi": r"\psi",
    "omega": r"\omega",
    "Gamma": r"\Gamma",
    "Delta": r"\Delta",
    "Theta": r"\Theta",
    "Lambda": r"\Lambda",
    "Xi": r"\Xi",
    "Pi": r"\Pi",
    "Sigma": r"\Sigma",
    "Phi": r"\Phi",
    "Psi": r"\Psi",
    "Omega": r"\Omega",
}

_TEXT_ESCAPES = {
    "\\": r"\textbackslash{}",
    "_": r"\_",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}

_UNICODE_MATH = {
    "−": "-",
    "∇": r"\nabla",
    "·": r"\cdot",
    "‖": r"\|",
    "½": r"\tfrac{1}{2}",
    "×": r"\times",
    "÷": r"\div",
    "≠": r"\neq",
    "∉": r"\notin",
    "≢": r"\not\equiv",
    "∈": r"\in",
    "≈": r"\approx",
    "∞": r"\infty",
    "±": r"\pm",
    "≤": r"\le",
    "≥": r"\ge",
    "→": r"\to",
    "∑": r"\sum",
    "Σ": r"\Sigma",
    "∂": r"\partial",
    "⊙": r"\odot",
    "ᵀ": r"^{\top}",
    "′": r"^{\prime}",
}


def _unicode_char(c: str) -> str:
    """A non-ASCII character as text-mode LaTeX that a plain TeX Live compiles."""
    if c in _UNICODE_MATH:
        return "$" + _UNICODE_MATH[c] + "$"
    name = unicodedata.name(c, "")
    plain = unicodedata.normalize("NFKC", c)
    if name.startswith("GREEK"):
        letter = name.split()[-1].lower().replace("lamda", "lambda")
        if "CAPITAL" in name:
            letter = letter.capitalize()
        command = "\\" + letter
        return "$" + command + "$" if command in GREEK.values() else "?"
    if plain.isascii() and plain != c:
        text = escape_text(plain)
        if "SUPERSCRIPT" in name or name.startswith("MODIFIER LETTER"):
            return "\\textsuperscript{" + text + "}"
        if "SUBSCRIPT" in name:
            return "\\textsubscript{" + text + "}"
        return text
    ascii_form = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
    return escape_text(ascii_form) if ascii_form else "?"


_COMBINING_ACCENTS = {
    "\u0304": "=",
    "\u0301": "'",
    "\u0300": "`",
    "\u0302": "^",
    "\u0303": "~",
    "\u0307": ".",
    "\u0308": '"',
}
"""Combining marks as text-mode accents: w + U+0304 (w̄) → \\=w."""


def escape_text(text: str) -> str:
    """Text-mode LaTeX for any text: the ten special characters escaped, Unicode mapped.

    A character with a math form (≠, ≤, ⊙, …) is mapped whole; any other is split into its
    base and accents (ȳ → \\={y}). A negating overlay (U+0338) is never dropped: that would
    turn ≠ into =.
    """
    out: list[str] = []
    for char in unicodedata.normalize("NFC", text):
        whole = char.isascii() or char in _UNICODE_MATH
        for c in char if whole else unicodedata.normalize("NFD", char):
            if c in _COMBINING_ACCENTS and out:
                out[-1] = "\\" + _COMBINING_ACCENTS[c] + "{" + out[-1] + "}"
            elif c == _NEGATION and out:
                out[-1] = "?"
            elif unicodedata.combining(c):
                continue
            else:
                out.append(_TEXT_ESCAPES.get(c, c) if c.isascii() else _unicode_char(c))
    return "".join(out)


_NEGATION = "\u0338"
"""COMBINING LONG SOLIDUS OVERLAY: ≠, ∉, ≢ decompose into their base and this mark."""


def _part(text: str) -> str:
    """One piece of a name in math mode: Greek, a letter, digits, or upright escaped text."""
    if text in GREEK:
        return GREEK[text]
    if re.fullmatch(r"[A-Za-z]|\d+", text):
        return text
    if re.fullmatch(r"[A-Za-z]+", text):
        return r"\mathrm{" + text + "}"
    return r"\text{" + escape_text(text) + "}"


PRIMES = re.compile(r"(?P<base>[A-Za-z][A-Za-z0-9]*)_(?P<primes>p{1,3})")
"""``z_p`` → z′, ``z_pp`` → z″, ``z_ppp`` → z‴: names with primes, as seed 001 writes z′ and z″
(a spec's names must be identifiers)."""


def latex_name(name: str, bar: bool = False) -> str:
    """A value name in math mode: ``W1`` → ``W_{1}``, ``b_2`` → ``b_{2}``, ``lam`` → ``\\lambda``,
    ``z_p`` → ``z'``.

    ``w_hidden_2`` → ``w_{\\text{hidden\\_2}}``; special characters are escaped. ``bar`` puts an
    adjoint bar over the base (over the whole primed name: ``\\overline{z'}``).
    """
    primed = PRIMES.fullmatch(name)
    if primed is not None:
        tex = latex_name(primed.group("base")) + "'" * len(primed.group("primes"))
        return rf"\overline{{{tex}}}" if bar else tex
    match = re.fullmatch(r"([A-Za-z]+?)(\d+)", name) if name not in GREEK else None
    if match and match.group(1) not in ("",):
        base, sub = match.group(1), match.group(2)
    elif "_" in name.strip("_") and not name.startswith("_"):
        base, sub = name.split("_", 1)
    else:
        base, sub = name, ""
    indexed = re.fullmatch(r"([A-Za-z]+?)(\d+)", base) if sub else None
    if indexed and re.fullmatch(r"[A-Za-z]+|\d+", sub):
        # H1_pre → H_{1,pre}: the layer index and the role share one subscript.
        head = _part(indexed.group(1))
        head = r"\bar{" + head + "}" if bar else head
        return head + "_{" + indexed.group(2) + "," + _part(sub) + "}"
    if sub and (base not in GREEK and not re.fullmatch(r"[A-Za-z]+", base)):
        base, sub = name, ""
    head = _part(base)
    if bar:
        head = r"\bar{" + head + "}"
    if not sub:
        return head
    return head + "_{" + _part(sub) + "}"


def backward_latex_name(name: str, program: Program) -> str:
    """Names of the backward pass: ``dX`` → ``\\bar{X}``, ``dw_z`` → ``\\bar{w}^{(z)}``."""
    forward = {e.out for e in program.forward_eqns} | set(program.params) | set(program.inputs)
    if name.startswith("d") and name[1:] in forward:
        return latex_name(name[1:], bar=True)
    if name.startswith("d"):
        for child in sorted(forward, key=len, reverse=True):
            base = name[1:]
            if base.endswith("_" + child) and base[: -len(child) - 1] in forward:
                return latex_name(base[: -len(child) - 1], bar=True) + (
                    "^{(" + latex_name(child) + ")}"
                )
    return latex_name(name)


def atom(tex: str) -> str:
    return "{" + tex + "}" if "_" in tex or "^" in tex else tex


def split_superscript(tex: str) -> tuple[str, str] | None:
    """``({x}, (A))`` for ``{x}^{(A)}``: a name that ends in a superscript of its own (a
    share's child, a transpose). TeX refuses a second superscript on it, even in braces."""
    if not tex.endswith("}"):
        return None
    depth = 0
    for i in range(len(tex) - 1, -1, -1):
        depth += {"}": 1, "{": -1}.get(tex[i], 0)
        if depth == 0:
            return (tex[: i - 1], tex[i + 1 : -1]) if i > 0 and tex[i - 1] == "^" else None
    return None
