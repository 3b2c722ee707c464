"""Analyses of a derivation: the scalarized view, the redundancy report, checks."""
