"""symbp: derive, explain and generate backpropagation code from a small model spec.

The public API: ``load`` a spec into a Model, ``derive`` its gradient Program, ``report`` its
redundancy, ``load_module`` a generated module (its header verified first), and ``train`` it
(:mod:`symbp.train`); ``symbp.emit`` writes the NumPy module, the array API module and the
LaTeX document; ``import symbp.dask`` spreads a gradient over a Dask cluster's workers.
"""

from symbp import notebook
from symbp.analysis.redundancy import report
from symbp.derivation import Derivation, derive
from symbp.front.spec import Model, load, loads
from symbp.loader import UnverifiedModule, load_module
from symbp.version import __version__

__all__ = [
    "Derivation",
    "Model",
    "UnverifiedModule",
    "__version__",
    "derive",
    "load",
    "load_module",
    "loads",
    "report",
]

notebook.register_in_ipython()
