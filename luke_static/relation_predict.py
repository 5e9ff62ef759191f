"""`python -m luke_static.relation_predict`: the command line `luke_static.cli.relation_predict`."""

from engine.cli import run
from luke_static.cli import relation_predict as main

if __name__ == "__main__":
    run(main)
