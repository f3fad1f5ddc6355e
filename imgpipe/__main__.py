"""`python -m imgpipe` runs the CLI."""

from .cli import main

main()
