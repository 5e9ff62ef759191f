"""Fine-tune LUKE on SQuAD 1.1: `python -m luke_static.squad.train --config configs/squad.yaml [-o ...]`."""

from __future__ import annotations

from engine.cli import run, train


def describe(job, cfg, dist) -> str:
    return (f"SQuAD: {len(job.dev_examples):,} dev questions, {job.luke.num_hidden_layers}-layer LUKE from "
            f"{cfg.model.luke} | max_seq {cfg.data.max_seq_length}, stride {cfg.data.doc_stride}, "
            f"entities {cfg.data.max_entity_length or 'none'} | batch {cfg.train.batch_size}×{dist.world} ranks"
            f"×{cfg.optim.accumulate_steps} accumulated")


def main(argv: list[str] | None = None) -> dict:
    """Parses the command line, trains, returns the final dev EM/F1."""
    from luke_static.squad.config import SquadRunConfig
    from luke_static.squad.job import SquadTraining

    return train(argv, __doc__, "configs/squad.yaml", SquadRunConfig, lambda cfg, dist: SquadTraining(cfg), describe)


if __name__ == "__main__":
    run(main)
