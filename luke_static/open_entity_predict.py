"""`python -m luke_static.open_entity_predict`: the command line `luke_static.cli.open_entity_predict`."""

from engine.cli import run
from luke_static.cli import open_entity_predict as main

if __name__ == "__main__":
    run(main)
