"""`python -m luke_static.squad_check`: the command line `luke_static.cli.squad_check` (see its help)."""

from engine.cli import run
from luke_static.cli import squad_check as main

if __name__ == "__main__":
    run(main)
