"""`python -m bilm.import_fluid`: the command line `bilm.cli.import_fluid` (see its help)."""

from bilm.cli import import_fluid as main
from engine.cli import run

if __name__ == "__main__":
    run(main)
