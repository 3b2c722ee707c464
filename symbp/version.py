"""symbp's version, stamped into every file it writes."""

__version__ = "0.1.0"
