"""`python -m traitforge.cli` and `accelerate launch -m traitforge.cli`."""

from traitforge.cli import main

main()
