"""`python -m engine --config configs/JOB.yaml [-o key=value] [--resume] [--show]` (see `engine.cli`)."""

from engine.command import quiet, run

quiet()

if __name__ == "__main__":
    from engine.cli import train

    run(train)
