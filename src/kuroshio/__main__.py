"""``python -m kuroshio`` runs the command line."""

from kuroshio.cli import main

main()
