"""The command line: parse, call one library function, print a summary.

One module per command group; importing them registers their commands on `app`."""

from traitforge.cli import data  # noqa: F401, I001  (the order here is the order of `--help`)
from traitforge.cli import reward  # noqa: F401
from traitforge.cli import loop  # noqa: F401
from traitforge.cli import annotate  # noqa: F401
from traitforge.cli._app import app, main

__all__ = ["app", "main"]
