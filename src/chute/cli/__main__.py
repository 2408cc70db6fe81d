"""`python -m chute.cli`: the same as the `chute` command."""

from chute.cli.main import entry

entry()
