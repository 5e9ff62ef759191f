"""Train the sequence tagger: `python -m tagger.train --config configs/lac.yaml [-o key=value] [--resume]`."""

from __future__ import annotations

from engine.cli import run, train


def describe(job, cfg, dist) -> str:
    elmo = f"ELMo from {cfg.model.elmo_model}" if cfg.model.use_elmo else "no ELMo"
    return (f"tagger: {len(job.words):,} words, {len(job.tagset)} tags, {elmo}, "
            f"BiGRU {cfg.model.gru_layers}×{cfg.model.gru_hidden} | batch {cfg.train.batch_size}×{dist.world} ranks")


def main(argv: list[str] | None = None) -> dict:
    """Parses the command line, trains, and returns the final dev metrics."""
    from tagger.config import TaggerRunConfig
    from tagger.job import TaggerTraining

    return train(argv, __doc__, "configs/lac.yaml", TaggerRunConfig, lambda cfg, dist: TaggerTraining(cfg), describe)


if __name__ == "__main__":
    run(main)
