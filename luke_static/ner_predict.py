"""`python -m luke_static.ner_predict`: the command line `luke_static.cli.ner_predict`."""

from engine.cli import run
from luke_static.cli import ner_predict as main

if __name__ == "__main__":
    run(main)
