"""`python -m luke_static.squad_eval`: the command line `luke_static.cli.squad_eval` (see its help)."""

from engine.cli import run
from luke_static.cli import squad_eval as main

if __name__ == "__main__":
    run(main)
