"""`python -m bilm.export`: the command line `bilm.cli.export` (see its help)."""

from bilm.cli import export as main
from engine.cli import run

if __name__ == "__main__":
    run(main)
