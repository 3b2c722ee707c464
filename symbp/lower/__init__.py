"""Lowering: a Model's network or graph to its forward Program."""
