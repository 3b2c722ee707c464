"""symbp: derive, explain and generate backpropagation code from a small model spec."""

__version__ = "0.1.0"
