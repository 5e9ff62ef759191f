"""`python -m engine --config configs/JOB.yaml [-o key=value] [--resume] [--show]` (see `engine.cli`)."""

from engine.cli import run, train

if __name__ == "__main__":
    run(train)
