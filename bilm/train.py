"""Pretrain the biLM: `python -m bilm.train --config configs/elmo.yaml [-o key=value] [--resume]`."""

from __future__ import annotations

from engine.cli import config_parser, run
from engine.config import dump_yaml, load_config
from engine.runtime import dist_env_from_launcher


def main(argv: list[str] | None = None) -> dict:
    """Parses the command line, trains, and returns the final dev metrics."""
    args = config_parser(__doc__, "configs/elmo.yaml").parse_args(argv)
    from bilm.pretrain import ElmoPretraining
    from bilm.pretrain_config import ElmoConfig
    from engine.trainer import Trainer

    cfg = load_config(ElmoConfig, args.config, args.overrides)
    dist = dist_env_from_launcher()
    job = ElmoPretraining(cfg, dist)
    if dist.is_main:
        m = job.model
        print(f"biLM: vocab {m.vocab_size:,}, embed/proj {m.embed_size}, hidden {m.hidden_size}, "
              f"{m.num_layers} layers, {m.softmax} softmax"
              + (f" ({m.num_samples} samples)" if m.softmax == "sampled" else "")
              + f" | batch {cfg.train.batch_size}×{dist.world} ranks, {cfg.data.num_steps} steps"
              + f" | {len(job.files.train)} train / {len(job.files.dev)} dev shards"
              + f" | {cfg.runtime.threads or 'all'} threads", flush=True)
    trainer = Trainer(job, cfg.train, cfg.optim, cfg.runtime, dist, run_config=dump_yaml(cfg))
    return trainer.fit(resume=args.resume)


if __name__ == "__main__":
    run(main)
