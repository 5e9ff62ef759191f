"""`python -m luke_static.export`: the command line `luke_static.cli.export` (see its help)."""

from engine.cli import run
from luke_static.cli import export as main

if __name__ == "__main__":
    run(main)
