"""Seed 004's example as a spec (``examples/logistic_l2.toml``, a [graph]): its LaTeX document.

The document must contain each term of the seed's derivation: the two contributions to w̄
(through z and through R) and z̄ = ȳ σ′(z); and it must compile. The same checks run on a
hand-built Program in ``tests/test_latex.py``; this file runs them on the spec through the
graph front end.
"""

from __future__ import annotations

import pytest

from symbp.derivation import derive
from symbp.front.spec import load
from tests.conftest import ROOT
from tests.test_latex import check_seed004_document


@pytest.mark.tex
def test_logistic_l2_document(tmp_path):
    derivation = derive(load(ROOT / "examples" / "logistic_l2.toml"))
    check_seed004_document(derivation, tmp_path)
