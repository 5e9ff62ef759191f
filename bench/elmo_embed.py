"""ELMo vectors per second: our exported program (`paddle.inference`, and ONNX Runtime when the [onnx]
extra is installed) vs the same biLM in torch eval mode under `inference_mode`.

    python bench/elmo_embed.py [--vocab 50000 --embed 256 --hidden 1024 --layers 2 --batch 32 --length 20]

Both compute every layer for `batch` sentences of `length` words from zero
states (ours adds the boundary tokens inside the program, as it serves).
Lower precision: our int8 export (ONNX Runtime) and, where the CPU has bf16,
our bf16 export (oneDNN), beside torch's `quantize_dynamic` int8 and bf16
autocast of its model; each with its cosine to its own fp32. Every side is
timed interleaved, round by round (`common.measure_all`).
Last lines: the ratios against torch eval fp32 (`ratio`: our faster fp32 path).
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
    measure_all,
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
    from engine.precision import bf16_unsupported, isa_summary

    bf16 = bf16_unsupported() is None
    print(f"{cpu_model()} ({isa_summary()}) | threads {a.threads} | vocab {a.vocab:,}, embed/proj {a.embed}, "
          f"hidden {a.hidden}, {a.layers} layers, "
          f"{a.batch} sentences × {a.length} words | {flops / 1e9:.1f} GFLOP | "
          f"numpy fp32 GEMM {ceiling / 1e9:.0f} GFLOP/s")
    backends = ["paddle"] + (["onnxruntime"] if onnx_backend() else [])
    with tempfile.TemporaryDirectory() as tmp:
        runs, lowered = exported_program(a, ids, Path(tmp), backends, bf16)
        torch_runs = torch_eval(a, ids, bf16)
        times = measure_all({**{f"ours fp32 ({b})": run for b, run in runs.items()},
                             **{name: run for name, (run, _) in {**lowered, **torch_runs}.items()}},
                            a.repeats, a.warmup)
    ours = {b: times[f"ours fp32 ({b})"] for b in runs}
    ours_lowered = {name: times[name] for name in lowered}
    torch_times = {name: times[name] for name in torch_runs}
    theirs = torch_times["torch eval fp32"]
    for backend, t in ours.items():
        print(line(f"ours fp32 ({backend})", t, tokens, "tokens") + ceiling_share(flops, t, ceiling))
    cosines = {name: c for name, (_, c) in {**lowered, **torch_runs}.items()}
    for name, t in {**ours_lowered, **torch_times}.items():
        cos = f" | cosine to its fp32 {cosines[name]:.5f}" if cosines[name] is not None else ""
        print(line(name, t, tokens, "tokens") + ceiling_share(flops, t, ceiling) + cos)
    if not bf16:
        print(f"bf16 rows skipped: {bf16_unsupported()}")
    for backend, t in ours.items():
        results.ratio(f"ratio, {backend}", theirs["median"] / t["median"], target=1.5,
                      title=f"ELMo vectors vs torch ({backend})")
    results.ratio("ratio", theirs["median"] / min(t["median"] for t in ours.values()))
    if "ours int8 (onnxruntime)" in ours_lowered:
        results.ratio("int8 ratio vs torch fp32", theirs["median"] / ours_lowered["ours int8 (onnxruntime)"]["median"],
                      target=2.0, title="ELMo vectors int8 vs torch fp32")
        results.ratio("int8 ratio vs torch int8", torch_times["torch int8 (quantize_dynamic)"]["median"]
                      / ours_lowered["ours int8 (onnxruntime)"]["median"], title="ELMo vectors int8 vs torch int8")
    if bf16:
        results.ratio("bf16 ratio vs torch bf16", torch_times["torch bf16 (autocast)"]["median"]
                      / ours_lowered["ours bf16 (paddle, oneDNN)"]["median"], title="ELMo vectors bf16 vs torch bf16")
    results.save()


def exported_program(a, ids, tmp: Path, backends: list[str], bf16: bool) -> tuple[dict, dict]:
    """({backend: a call running the exported program on `ids`}, {name: (a call at a lower precision,
    cosine to fp32)}); the fp32 outputs checked equal across backends."""
    import numpy as np
    import paddle

    from bilm.config import BiLMConfig
    from bilm.embedder import export_inference_model
    from bilm.formats import write_model_arrays
    from bilm.model import variable_shapes
    from engine.inference import InferenceProgram
    from engine.precision import quantize_int8
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
    lowered = {}
    if "onnxruntime" in backends:
        quantize_int8(prefix)  # what `bilm export --precision int8` serves
        lowered["ours int8 (onnxruntime)"] = InferenceProgram(prefix, threads=a.threads, precision="int8")
    if bf16:
        lowered["ours bf16 (paddle, oneDNN)"] = InferenceProgram(prefix, threads=a.threads, precision="bf16")
    return ({b: (lambda p=p: p.run(feed)) for b, p in programs.items()},
            {name: ((lambda p=p: p.run(feed)), cosine(p.run(feed)["elmo_layers"][:, 1:], outputs[0][:, 1:]))
             for name, p in lowered.items()})


def torch_eval(a, ids, bf16: bool) -> dict:
    """{name: (a call, cosine of its LSTM layers to fp32, None for fp32 itself)}: torch eval fp32, its
    `quantize_dynamic` int8 (the input products; the recurrence is not a Linear) and bf16 autocast."""
    torch = torch_threads(a.threads)
    from torch_bilm import TorchBiLM

    model = TorchBiLM(a.vocab, a.embed, a.hidden, a.layers).eval()
    quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    bos, eos = torch.zeros((len(ids), 1), dtype=torch.long), torch.ones((len(ids), 1), dtype=torch.long)
    wrapped = torch.cat([bos, torch.from_numpy(ids), eos], 1)

    def forward(m):
        fw = m.layers(wrapped, 0, training=False)
        bw = m.layers(wrapped.flip(1), 1, training=False)
        return torch.stack([torch.cat([f, b.flip(1)], -1) for f, b in zip(fw[1], bw[1])])

    @torch.inference_mode()
    def run():
        return forward(model)

    @torch.inference_mode()
    def int8():
        return forward(quantized)

    @torch.inference_mode()
    def autocast():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return forward(model)

    want = run().numpy()
    runs = {"torch eval fp32": (run, None), "torch int8 (quantize_dynamic)": (int8, None)}
    if bf16:
        runs["torch bf16 (autocast)"] = (autocast, None)
    return {name: (fn, None if name.endswith("fp32") else cosine(fn().float().numpy(), want))
            for name, (fn, _) in runs.items()}


def cosine(got, want) -> float:
    """Mean cosine similarity of the vectors along the last axis (rows of zeros left out)."""
    import numpy as np

    got, want = got.reshape(-1, got.shape[-1]), want.reshape(-1, want.shape[-1])
    norms = np.linalg.norm(got, axis=-1) * np.linalg.norm(want, axis=-1)
    real = norms > 0
    return float(((got * want).sum(-1)[real] / norms[real]).mean())


if __name__ == "__main__":
    main()
