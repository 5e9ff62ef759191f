"""`python -m luke_static.fill_mask`: the command line `luke_static.cli.fill_mask` (see its help)."""

from engine.cli import run
from luke_static.cli import fill_mask as main

if __name__ == "__main__":
    run(main)
