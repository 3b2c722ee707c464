"""symbp: derive, explain and generate backpropagation code from a small model spec."""

__version__ = "0.1.0"


def report(*args, **kwargs):
    """The redundancy report of a spec (see :func:`symbp.analysis.redundancy.report`)."""
    from symbp.analysis.redundancy import report as _report

    return _report(*args, **kwargs)
