"""The golden record: every example's outputs under ``generated/``, rebuilt by one function.

``python -m symbp.cli.regenerate`` rewrites them; the freshness test compares byte for byte.
"""

from __future__ import annotations

import sys
from pathlib import Path

from symbp.analysis.verify import verify_source
from symbp.derivation import derive
from symbp.emit.latex import render_latex
from symbp.emit.numpy_module import generate
from symbp.files import write_all
from symbp.front.spec import load
from symbp.resources import example_specs


def expected_outputs(root: Path) -> dict[Path, str]:
    """File path → text, for every example spec, as ``symbp generate`` would write them."""
    outputs = {}
    for spec in example_specs():
        derivation = derive(load(spec.relative_to(root) if spec.is_relative_to(root) else spec))
        outputs[root / "generated" / f"{derivation.model.name}.py"] = generate(derivation)
        outputs[root / "generated" / f"{derivation.model.name}.tex"] = render_latex(derivation)
    return outputs


def main() -> None:
    """Rewrite ``generated/``; ``--force`` also replaces files symbp did not write or that
    were edited (files in the old format, say)."""
    root = Path(__file__).resolve().parents[2]
    outputs = expected_outputs(root)
    for path, text in outputs.items():
        if path.suffix == ".py":
            verify_source(text, path.stem)
    for path in write_all(outputs, force="--force" in sys.argv[1:]):
        print(f"wrote {path.relative_to(root)}")


if __name__ == "__main__":
    main()
