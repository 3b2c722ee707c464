"""Emitters: Programs printed as a NumPy module, a LaTeX document, a picture."""
