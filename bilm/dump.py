"""`python -m bilm.dump`: the command line `bilm.cli.dump` (see its help)."""

from bilm.cli import dump as main
from engine.cli import run

if __name__ == "__main__":
    run(main)
