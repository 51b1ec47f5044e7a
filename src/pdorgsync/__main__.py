"""``python -m pdorgsync`` runs the command line."""

from pdorgsync.cli import main

main()
