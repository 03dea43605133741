"""`python -m services` is the `hfbus` command."""

from services.cli import main

main()
