"""Compiling a LaTeX document to PDF with the TeX installation (the command's job, not the
document's: the document is text, deterministic; the PDF depends on the machine's TeX)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from symbp.files import write_all
from symbp.provenance import stamp_pdf


class LatexError(Exception):
    """pdflatex is missing or failed; the message says what to do or shows the log's errors."""


INSTALL_HINT = (
    "pdflatex not found; install TeX Live: "
    "apt-get install texlive-latex-base texlive-latex-recommended"
)


def compile_pdf(tex_path: Path, figures: Iterable[Path] = (), *, force: bool = False) -> Path:
    """Compile ``tex_path`` (with the ``figures`` it includes) in a temporary directory; copy
    the PDF, under symbp's header (a last comment line), next to it atomically. A PDF symbp
    did not write is kept unless ``force``."""
    latexmk, pdflatex = shutil.which("latexmk"), shutil.which("pdflatex")
    if pdflatex is None:
        raise LatexError(INSTALL_HINT)
    with tempfile.TemporaryDirectory(prefix="symbp-latex-") as tmp:
        src = Path(tmp) / tex_path.name
        shutil.copyfile(tex_path, src)
        for picture in figures:
            shutil.copyfile(picture, Path(tmp) / picture.name)
        if latexmk:
            runs = [[latexmk, "-pdf", "-halt-on-error", "-interaction=nonstopmode", src.name]]
        else:
            cmd = [pdflatex, "-halt-on-error", "-interaction=nonstopmode", src.name]
            runs = [cmd, cmd]
        for cmd in runs:
            run = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, errors="replace")
            if run.returncode != 0:
                log = src.with_suffix(".log")
                text = log.read_text(errors="replace") if log.exists() else run.stdout
                raise LatexError("LaTeX failed:\n" + "\n".join(error_lines(text.splitlines())))
        pdf = tex_path.with_suffix(".pdf")
        write_all({pdf: stamp_pdf(src.with_suffix(".pdf").read_bytes())}, force=force)
    return pdf


def error_lines(lines: Iterable[str]) -> list[str]:
    """The ``!`` error lines of a TeX log with the two lines after each."""
    lines = list(lines)
    out = []
    for i, line in enumerate(lines):
        if line.startswith("!"):
            out.extend(lines[i : i + 3])
    return out or lines[-20:]
