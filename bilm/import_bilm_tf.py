"""`python -m bilm.import_bilm_tf`: the command line `bilm.cli.import_bilm_tf` (see its help)."""

from bilm.cli import import_bilm_tf as main
from engine.cli import run

if __name__ == "__main__":
    run(main)
