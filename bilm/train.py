"""`python -m bilm.train`: the command line `bilm.cli.train` (see its help)."""

from bilm.cli import train as main
from engine.cli import run

if __name__ == "__main__":
    run(main)
