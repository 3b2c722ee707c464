"""``python -m symbp`` runs the command line."""

from symbp.cli import main

main()
