"""`python -m luke_static.convert`: the command line `luke_static.cli.convert` (see its help)."""

from engine.cli import run
from luke_static.cli import convert as main

if __name__ == "__main__":
    run(main)
