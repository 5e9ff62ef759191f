"""Fine-tune LUKE on Open Entity: `python -m luke_static.open_entity.train --config configs/open_entity.yaml`."""

from __future__ import annotations

from engine.cli import run, train


def describe(job, cfg, dist) -> str:
    return (f"Open Entity: {len(job.labels)} labels, {len(job.splits['dev']['labels']):,} dev records, "
            f"{job.luke.num_hidden_layers}-layer LUKE from {cfg.model.luke} | batch {cfg.train.batch_size}"
            f"×{dist.world} ranks×{cfg.optim.accumulate_steps} accumulated")


def main(argv: list[str] | None = None) -> dict:
    """Parses the command line, trains, returns the last dev metrics."""
    from luke_static.open_entity.config import OpenEntityRunConfig
    from luke_static.open_entity.job import OpenEntityTraining

    return train(argv, __doc__, "configs/open_entity.yaml", OpenEntityRunConfig,
                 lambda cfg, dist: OpenEntityTraining(cfg), describe)


if __name__ == "__main__":
    run(main)
