"""The parts a LaTeX document is made of: sections of paragraphs and verified lines, and the
:class:`Writer` a section is built with (the derivation, its notation, its printers)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import sympy

from symbp.derivation import Derivation
from symbp.emit.latex_lines import equation
from symbp.emit.latex_notation import Notation, printers
from symbp.emit.printing import LatexPrinters
from symbp.ir.display import Line
from symbp.ir.program import Program


@dataclass
class Block:
    """A paragraph (``text``, LaTeX already), displayed ``lines`` (numbered or not), or a
    ``table`` of rows of cells (LaTeX already)."""

    text: str = ""
    lines: list[Line] = field(default_factory=list)
    numbered: bool = True
    table: list[list[str]] = field(default_factory=list)
    columns: str = ""
    """The table's column specification (``lrr``); its first row is the header."""


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    subsection: bool = False
    numbered: bool = True

    def text(self, text: str) -> None:
        self.blocks.append(Block(text=text))

    def show(self, lines: Iterable[Line], numbered: bool = True) -> None:
        self.blocks.append(Block(lines=list(lines), numbered=numbered))


class Writer:
    """What a section builder needs: the derivation, its notation, the printers, and
    :meth:`equation` to make a verified line."""

    def __init__(self, derivation: Derivation, notation: Notation):
        self.derivation = derivation
        self.program: Program = derivation.program
        self.notation = notation
        self.pr: LatexPrinters = printers(derivation, notation)

    def equation(self, sides: Sequence[sympy.Basic], **options) -> Line:
        """A line stating ``sides`` equal (see :func:`symbp.emit.latex_lines.equation`)."""
        return equation(self.pr, sides, **options)

    def tex(self, expr: sympy.Basic) -> str:
        return self.pr.latex(expr)

    def name(self, value: str) -> str:
        return self.notation.names[value]


SectionBuilder = Callable[[Writer], Section | None]
