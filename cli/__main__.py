"""`python -m cli`: the `disputes` command."""

from cli import main

main()
