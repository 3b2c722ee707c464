"""Automatic differentiation: Programs from Programs (the backward pass)."""
