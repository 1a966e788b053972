"""``python -m app`` runs the ``selfcare`` command."""

from app.cli import main

main()
