"""Sampled vs full softmax at a 50k vocabulary: the softmax layer alone, and a whole training step.

    python bench/softmax.py [--vocab 50000 --samples 8192 --embed 256 --tokens 640 --threads 2]

Layer: forward + backward of `bilm.sampled_softmax` over `tokens` hidden
states; the sampled layer as training runs it (gradients of the table rows
it reads, which the engine updates row-wise), the full one with dense table
gradients. Step: the biLM training step of `bench/elmo_train.py` with each loss.
Last line: `ratio: X` (sampled over full, layer speed).
"""

from __future__ import annotations

from common import Results, cpu_model, line, measure, parser, set_threads


def layer_step(a, sampled: bool):
    import numpy as np
    import paddle

    from bilm.lm import full_softmax_loss, gathered_softmax_rows, sampled_loss_from_rows
    from reader.sampling import LogUniformSampler

    paddle.enable_static()
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        h = paddle.static.data("h", [a.tokens, a.embed], "float32")
        h.stop_gradient = False
        y = paddle.static.data("y", [a.tokens], "int64")
        w = paddle.static.create_parameter([a.vocab, a.embed], "float32")
        b = paddle.static.create_parameter([a.vocab], "float32")
        if sampled:  # as training runs it: gradients of the rows read, not of whole tables
            neg = paddle.static.data("neg", [a.samples], "int64")
            tries = paddle.static.data("tries", [1], "float32")
            gathers, rows = gathered_softmax_rows(w, b, y, neg)
            loss = sampled_loss_from_rows(h, y, neg, rows, tries, a.vocab).mean()
            grads = paddle.static.gradients([loss], [h] + [g.rows for g in gathers])
        else:
            loss = full_softmax_loss(h, y, w, b).mean()
            grads = paddle.static.gradients([loss], [h, w, b])
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    rng = np.random.default_rng(0)
    feed = {"h": rng.normal(size=(a.tokens, a.embed)).astype(np.float32), "y": rng.integers(0, a.vocab, a.tokens)}
    if sampled:
        ids, n = LogUniformSampler(a.vocab, a.samples).draw(rng)
        feed.update({"neg": ids, "tries": np.array([n], np.float32)})
    return lambda: exe.run(main, feed=feed, fetch_list=[loss, *grads])


def main():
    p = parser(__doc__)
    p.add_argument("--vocab", type=int, default=50000)
    p.add_argument("--samples", type=int, default=8192)
    p.add_argument("--embed", type=int, default=256)
    p.add_argument("--tokens", type=int, default=640)
    p.add_argument("--no-step", action="store_true", help="skip the whole-step comparison")
    a = p.parse_args()
    results = Results("softmax", a)
    set_threads(a.threads, keep_memory=not a.default_malloc)
    print(f"{cpu_model()} | threads {a.threads} | vocab {a.vocab:,}, {a.samples} samples, "
          f"{a.tokens} tokens × {a.embed}")
    sampled = measure(layer_step(a, True), a.repeats, a.warmup)
    full = measure(layer_step(a, False), a.repeats, a.warmup)
    print(line("softmax layer, sampled", sampled, a.tokens, "tokens"))
    print(line("softmax layer, full", full, a.tokens, "tokens"))
    if not a.no_step:
        import numpy as np

        from reader.sampling import LogUniformSampler

        from elmo_train import paddle_step

        class Step:  # the default ELMo benchmark configuration, both losses
            vocab, embed, hidden, batch, steps, layers, samples = a.vocab, a.embed, 1024, 32, 20, 2, a.samples

        rng = np.random.default_rng(0)
        ids = {n: rng.integers(3, a.vocab, (32, 20)) for n in
               ("token_ids", "next_token_ids", "token_ids_reverse", "next_token_ids_reverse")}
        neg, tries = LogUniformSampler(a.vocab, a.samples).draw(rng)
        for name, kind in (("whole step, sampled", "sampled"), ("whole step, full", "full")):
            Step.softmax = kind
            t = measure(paddle_step(Step, ids, neg, tries), max(2, a.repeats // 2), 1)
            print(line(name, t, 640, "tokens"))
    results.ratio("ratio", full["median"] / sampled["median"], target=5.0, title="sampled vs full softmax layer")
    results.save()


if __name__ == "__main__":
    main()
