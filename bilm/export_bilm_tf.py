"""`python -m bilm.export_bilm_tf`: the command line `bilm.cli.export_bilm_tf` (see its help)."""

from bilm.cli import export_bilm_tf as main
from engine.cli import run

if __name__ == "__main__":
    run(main)
