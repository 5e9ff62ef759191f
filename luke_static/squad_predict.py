"""`python -m luke_static.squad_predict`: the command line `luke_static.cli.squad_predict` (see its help)."""

from engine.cli import run
from luke_static.cli import squad_predict as main

if __name__ == "__main__":
    run(main)
