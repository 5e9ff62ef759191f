"""ELMo vectors per second: our exported program (`paddle.inference`, and ONNX Runtime when the [onnx]
extra is installed) vs the same biLM in torch eval mode under `inference_mode`.

    python bench/elmo_embed.py [--vocab 50000 --embed 256 --hidden 1024 --layers 2 --batch 32 --length 20]

Both compute every layer for `batch` sentences of `length` words from zero
states (ours adds the boundary tokens inside the program, as it serves).
Last line: `ratio: X` (our faster serving path / torch, tokens per second).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from common import (
    Results,
    ceiling_share,
    cpu_model,
    gemm_rate,
    line,
    measure,
    onnx_backend,
    parser,
    set_threads,
    torch_threads,
)


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
    results = Results("elmo_embed", a)
    set_threads(a.threads, keep_memory=not a.default_malloc)
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
    backends = ["paddle"] + (["onnxruntime"] if onnx_backend() else [])
    with tempfile.TemporaryDirectory() as tmp:
        runs = exported_program(a, ids, Path(tmp), backends)
        ours = {b: measure(run, a.repeats, a.warmup) for b, run in runs.items()}
    theirs = measure(torch_eval(a, ids), a.repeats, a.warmup)
    for backend, t in ours.items():
        print(line(f"ours ({backend})", t, tokens, "tokens") + ceiling_share(flops, t, ceiling))
    print(line("torch eval", theirs, tokens, "tokens") + ceiling_share(flops, theirs, ceiling))
    for backend, t in ours.items():
        results.ratio(f"ratio, {backend}", theirs["median"] / t["median"], target=1.5,
                      title=f"ELMo vectors vs torch ({backend})")
    results.ratio("ratio", theirs["median"] / min(t["median"] for t in ours.values()))
    results.save()


def exported_program(a, ids, tmp: Path, backends: list[str]) -> dict:
    """{backend: a call running the exported program on `ids`}, outputs checked equal across backends."""
    import numpy as np
    import paddle

    from bilm.config import BiLMConfig
    from bilm.embedder import export_inference_model
    from bilm.formats import write_model_arrays
    from bilm.model import variable_shapes
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
    prefix = export_inference_model(exe, tmp / "inference", cfg, vocab, a.length if a.fixed_length else None,
                                    onnx="onnxruntime" in backends)
    feed = {"word_ids": ids, "lengths": np.full(len(ids), ids.shape[1], np.int64)}
    programs = {b: InferenceProgram(prefix, threads=a.threads, onednn=a.onednn, backend=b) for b in backends}
    outputs = [p.run(feed)["elmo_layers"] for p in programs.values()]
    assert all(np.allclose(o, outputs[0], atol=1e-5) for o in outputs), "the backends disagree"
    return {b: (lambda p=p: p.run(feed)) for b, p in programs.items()}


def torch_eval(a, ids):
    torch = torch_threads(a.threads)
    from torch_bilm import TorchBiLM

    model = TorchBiLM(a.vocab, a.embed, a.hidden, a.layers).eval()
    bos, eos = torch.zeros((len(ids), 1), dtype=torch.long), torch.ones((len(ids), 1), dtype=torch.long)
    wrapped = torch.cat([bos, torch.from_numpy(ids), eos], 1)

    @torch.inference_mode()
    def run():
        fw = model.layers(wrapped, 0, training=False)
        bw = model.layers(wrapped.flip(1), 1, training=False)
        return [torch.cat([f, b.flip(1)], -1) for f, b in zip(fw[1], bw[1])]

    return run


if __name__ == "__main__":
    main()
