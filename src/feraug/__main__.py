"""``python -m feraug`` runs the CLI."""

from feraug.cli.main import main

main()
