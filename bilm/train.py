"""Pretrain the biLM: `python -m bilm.train --config configs/elmo.yaml [-o key=value] [--resume]`."""

from __future__ import annotations

from engine.cli import run, train


def describe(job, cfg, dist) -> str:
    m = job.model
    softmax = f"{m.softmax} softmax" + (f" ({m.num_samples} samples)" if m.softmax == "sampled" else "")
    return (f"biLM: vocab {m.vocab_size:,}, embed/proj {m.embed_size}, hidden {m.hidden_size}, "
            f"{m.num_layers} layers, {softmax} | batch {cfg.train.batch_size}×{dist.world} ranks, "
            f"{cfg.data.num_steps} steps | {len(job.files.train)} train / {len(job.files.dev)} dev shards | "
            f"{cfg.runtime.threads or 'all'} threads")


def main(argv: list[str] | None = None) -> dict:
    """Parses the command line, trains, and returns the final dev metrics."""
    from bilm.pretrain import ElmoPretraining
    from bilm.pretrain_config import ElmoConfig

    return train(argv, __doc__, "configs/elmo.yaml", ElmoConfig, ElmoPretraining, describe)


if __name__ == "__main__":
    run(main)
