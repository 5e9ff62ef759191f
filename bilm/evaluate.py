"""`python -m bilm.evaluate`: the command line `bilm.cli.evaluate` (see its help)."""

from bilm.cli import evaluate as main
from engine.cli import run

if __name__ == "__main__":
    run(main)
