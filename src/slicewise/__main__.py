"""``python -m slicewise`` runs the CLI."""

from slicewise.cli import main

main()
