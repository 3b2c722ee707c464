"""symbp: derive, explain and generate backpropagation code from a small model spec.

The public API: ``load`` a spec into a Model, ``derive`` its gradient Program, ``report`` its
redundancy; ``symbp.emit`` writes the NumPy module and the LaTeX document from a Derivation.
"""

from symbp import notebook
from symbp.analysis.redundancy import report
from symbp.derivation import Derivation, derive
from symbp.front.spec import Model, load, loads
from symbp.version import __version__

__all__ = ["Derivation", "Model", "__version__", "derive", "load", "loads", "report"]

notebook.register_in_ipython()
