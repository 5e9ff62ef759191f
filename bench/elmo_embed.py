"""ELMo vectors per second: our exported program through `paddle.inference` vs torch eval mode.

    python bench/elmo_embed.py [--vocab 50000 --embed 256 --hidden 1024 --layers 2 --batch 32 --length 20]

Both compute every layer for `batch` sentences of `length` words from zero
states (ours adds the boundary tokens inside the program, as it serves).
Last line: `ratio: X` (ours / torch, tokens per second).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from common import ceiling_share, cpu_model, gemm_rate, line, measure, parser, set_threads, torch_threads


def main():
    p = parser(__doc__)
    p.add_argument("--vocab", type=int, default=50000)
    p.add_argument("--embed", type=int, default=256)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--length", type=int, default=20)
    p.add_argument("--onednn", action="store_true", help="run our predictor with oneDNN kernels")
    p.add_argument("--any-length", dest="fixed_length", action="store_false",
                   help="export for any sentence length (a while loop) instead of a fixed one (unrolled)")
    a = p.parse_args()
    set_threads(a.threads)
    import numpy as np

    ids = np.random.default_rng(0).integers(3, a.vocab, (a.batch, a.length)).astype(np.int64)
    tokens = a.batch * a.length
    ceiling = gemm_rate()
    # Per word, direction and layer: input and recurrent gate products, projection.
    flops = tokens * 2 * a.layers * 2 * (a.embed * 4 * a.hidden * 2 + a.hidden * a.embed)
    print(f"{cpu_model()} | threads {a.threads} | vocab {a.vocab:,}, embed/proj {a.embed}, hidden {a.hidden}, "
          f"{a.layers} layers, "
          f"{a.batch} sentences × {a.length} words | {flops / 1e9:.1f} GFLOP | "
          f"numpy fp32 GEMM {ceiling / 1e9:.0f} GFLOP/s")
    with tempfile.TemporaryDirectory() as tmp:
        ours = measure(exported_program(a, ids, Path(tmp)), a.repeats, a.warmup)
    theirs = measure(torch_eval(a, ids), a.repeats, a.warmup)
    print(line("ours (paddle.inference)", ours, tokens, "tokens") + ceiling_share(flops, ours, ceiling))
    print(line("torch eval", theirs, tokens, "tokens") + ceiling_share(flops, theirs, ceiling))
    print(f"ratio: {theirs['median'] / ours['median']:.2f}")


def exported_program(a, ids, tmp: Path):
    import numpy as np
    import paddle

    from bilm.config import BiLMConfig
    from bilm.formats import write_model_arrays
    from bilm.model import variable_shapes
    from bilm.vectors import export_inference_model
    from engine.inference import InferenceProgram
    from reader.vocab import SPECIAL_TOKENS, Vocabulary

    cfg = BiLMConfig(vocab_size=a.vocab, embed_size=a.embed, hidden_size=a.hidden, num_layers=a.layers, softmax="full")
    (tmp / "v.txt").write_text("".join(t + "\n" for t in [*SPECIAL_TOKENS, *map(str, range(a.vocab - 3))]))
    vocab = Vocabulary.load(tmp / "v.txt")
    rng = np.random.default_rng(0)
    arrays = {n: rng.normal(0, 0.05, s).astype(np.float32) for n, s in variable_shapes(cfg).items()}
    write_model_arrays(tmp / "model", cfg, vocab, arrays)
    paddle.enable_static()
    from bilm.formats import load_model_variables

    exe = paddle.static.Executor(paddle.CPUPlace())
    load_model_variables(tmp / "model", cfg, paddle.CPUPlace(), with_softmax=False)
    prefix = export_inference_model(exe, tmp / "inference", cfg, vocab, a.length if a.fixed_length else None)
    program = InferenceProgram(prefix, threads=a.threads, onednn=a.onednn)
    feed = {"word_ids": ids, "lengths": np.full(len(ids), ids.shape[1], np.int64)}
    return lambda: program.run(feed)


def torch_eval(a, ids):
    torch = torch_threads(a.threads)
    from torch_bilm import TorchBiLM

    model = TorchBiLM(a.vocab, a.embed, a.hidden, a.layers).eval()
    bos, eos = torch.zeros((len(ids), 1), dtype=torch.long), torch.ones((len(ids), 1), dtype=torch.long)
    wrapped = torch.cat([bos, torch.from_numpy(ids), eos], 1)

    @torch.no_grad()
    def run():
        fw = model.layers(wrapped, 0, training=False)
        bw = model.layers(wrapped.flip(1), 1, training=False)
        return [torch.cat([f, b.flip(1)], -1) for f, b in zip(fw[1], bw[1])]

    return run


if __name__ == "__main__":
    main()
