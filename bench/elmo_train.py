"""ELMo training throughput: our static program vs a same-architecture PyTorch eager biLM.

    python bench/elmo_train.py [--vocab 50000 --embed 256 --hidden 1024 --batch 32 --steps 20
                                --layers 2 --samples 8192 --threads 2]

Both sides: sampled softmax with the same negatives, Adagrad (lr 0.2, initial
accumulator 1.0), global-norm clipping 10, the same thread count. Prints the
machine's fp32 GEMM rate measured in this run and each side's fraction of
the compute ceiling (FLOPs per step / GEMM rate / step time). Last line:
`ratio: X` (ours / the faster torch variant, tokens per second): torch
eager with dense table gradients, and with sparse ones (`nn.Embedding(sparse=True)`
and sparse softmax-row lookups, which torch's Adagrad updates row-wise).
"""

from __future__ import annotations

from common import Results, ceiling_share, cpu_model, gemm_rate, line, measure, parser, set_threads, torch_threads


def flops_per_step(a) -> float:
    """Matrix-product FLOPs of one step, forward and backward (≈ 3× forward)."""
    E = P = a.embed
    per_token_direction = a.layers * (2 * E * 4 * a.hidden + 2 * P * 4 * a.hidden + 2 * a.hidden * P)
    per_token_direction += 2 * P * (a.samples + 1)
    return 3 * 2 * per_token_direction * a.batch * a.steps


def main():
    p = parser(__doc__)
    p.add_argument("--vocab", type=int, default=50000)
    p.add_argument("--embed", type=int, default=256)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--samples", type=int, default=8192)
    a = p.parse_args()
    results = Results("elmo_train", a)
    set_threads(a.threads, keep_memory=not a.default_malloc)
    import numpy as np

    from reader.sampling import LogUniformSampler

    tokens = a.batch * a.steps
    rng = np.random.default_rng(0)
    ids = {n: rng.integers(3, a.vocab, (a.batch, a.steps)) for n in
           ("token_ids", "next_token_ids", "token_ids_reverse", "next_token_ids_reverse")}
    neg_ids, tries = LogUniformSampler(a.vocab, a.samples).draw(rng)
    ceiling = gemm_rate()
    flops = flops_per_step(a)
    print(f"{cpu_model()} | threads {a.threads} | vocab {a.vocab:,}, embed/proj {a.embed}, hidden {a.hidden}, "
          f"batch {a.batch}, "
          f"steps {a.steps}, {a.layers} layers, {a.samples} samples | {flops / 1e9:.1f} GFLOP/step | "
          f"numpy fp32 GEMM {ceiling / 1e9:.0f} GFLOP/s")

    ours = measure(paddle_step(a, ids, neg_ids, tries), a.repeats, a.warmup)
    dense = measure(torch_step(a, ids, neg_ids, tries, sparse=False), a.repeats, a.warmup)
    sparse = measure(torch_step(a, ids, neg_ids, tries, sparse=True), a.repeats, a.warmup)
    for name, t in (("ours (Paddle static)", ours), ("torch eager, dense tables", dense),
                    ("torch eager, sparse tables", sparse)):
        print(line(name, t, tokens, "tokens") + ceiling_share(flops, t, ceiling))
    results.ratio("ratio vs dense torch", dense["median"] / ours["median"], target=2.0,
                  title="ELMo training vs torch, dense tables")
    results.ratio("ratio vs sparse torch", sparse["median"] / ours["median"], target=1.6,
                  title="ELMo training vs torch, sparse tables")
    # Against the stronger reference.
    results.ratio("ratio", min(dense["median"], sparse["median"]) / ours["median"])
    results.save()


def paddle_step(a, ids, neg_ids, tries):
    import numpy as np
    import paddle

    from bilm.config import BiLMConfig
    from bilm.lm import build_lm, zero_states
    from engine.job import TrainGraph
    from engine.ops import SEED_FEED
    from engine.optim import OptimConfig
    from engine.step import build_step_programs

    cfg = BiLMConfig(vocab_size=a.vocab, embed_size=a.embed, hidden_size=a.hidden, num_layers=a.layers,
                     num_samples=a.samples, softmax=getattr(a, "softmax", "sampled"), state_reset="stream")

    def graph():  # the pretraining job's graph; the engine builds the optimization exactly as in training
        g = build_lm(cfg, a.batch, a.steps, training=True, bos_id=0, eos_id=1)
        return TrainGraph(feeds=g.feeds, loss=g.loss, objective=g.loss * float(a.steps),
                          gradient_sources=g.gradient_sources)

    paddle.enable_static()
    optim = OptimConfig(name="adagrad", learning_rate=0.2, initial_accumulator_value=1.0, epsilon=0.0,
                        grad_clip=10.0)
    programs = build_step_programs(graph, optim, total_steps=100)
    exe = paddle.static.Executor(paddle.CPUPlace())
    for startup in programs.startups:
        exe.run(startup)
    feed = {**ids, **zero_states(cfg, a.batch), SEED_FEED: np.array([1], np.int32)}
    if cfg.softmax == "sampled":
        feed.update({"neg_ids": neg_ids, "num_tries": np.array([tries], np.float32)})
    loss = programs.graph.loss
    return lambda: exe.run(programs.step, feed=feed, fetch_list=[loss])


def torch_step(a, ids, neg_ids, tries, sparse: bool):
    torch = torch_threads(a.threads)
    from torch_bilm import TorchBiLM, clip_grad_norm

    torch.manual_seed(0)
    model = TorchBiLM(a.vocab, a.embed, a.hidden, a.layers, sparse=sparse)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=0.2, initial_accumulator_value=1.0)
    t = {k: torch.from_numpy(v) for k, v in ids.items()}
    neg = torch.from_numpy(neg_ids)

    def step():
        optimizer.zero_grad()
        loss = model.loss(t["token_ids"], t["next_token_ids"], t["token_ids_reverse"], t["next_token_ids_reverse"],
                          neg, float(tries)) * a.steps
        loss.backward()
        clip_grad_norm(model.parameters(), 10.0)
        optimizer.step()

    return step


if __name__ == "__main__":
    main()
