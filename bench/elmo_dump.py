"""Embedding a corpus: `python -m bilm dump`'s path vs a torch eval reference that batches by sorted length.

    python bench/elmo_dump.py [--sentences 20000 --vocab 50000 --embed 256 --hidden 1024 --threads 2]

Writes `--sentences` random sentences of 3–60 words and embeds them all,
writing the top layer of every sentence to HDF5 on both sides:
- ours: what `python -m bilm dump` runs with its defaults (`reader.sentences.sorted_batches`,
  `bilm.embedder.dump_file`) on each backend (`paddle`; `onnxruntime` with
  the [onnx] extra), in one process on `--threads` threads, and in
  `--threads` processes of one thread each (`python -m bilm dump -n`);
- torch: the same biLM in eval mode under `inference_mode`, one process on
  `--threads` threads, the sentences sorted by length in batches of 64, each
  sentence's backward direction reversed within its length.
- ours at int8: `python -m bilm export --precision int8` once (checked on
  the corpus's first 256 sentences; timed and printed on its own, as it is
  run once per model), then `python -m bilm dump` of that export, in one
  process and in `--threads` processes.
Our times include each dump's start-up (reading the model, building the
program and, from a model directory, converting it to ONNX; starting the
processes); torch's, like the int8 dump's, start from a model in hand. Last
line: `ratio: X` (our fastest one-process variant / torch, tokens per second);
the processes' ratios are printed above it, and `ratio, int8 with its export`
counts the export in.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from common import Results, cpu_model, onnx_backend, parser, set_threads, torch_threads


def main():
    p = parser(__doc__)
    p.add_argument("--sentences", type=int, default=20000)
    p.add_argument("--vocab", type=int, default=50000)
    p.add_argument("--embed", type=int, default=256)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--layers", type=int, default=2)
    a = p.parse_args()
    results = Results("elmo_dump", a)
    set_threads(a.threads, keep_memory=not a.default_malloc)
    import numpy as np

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(a.vocab - 3)]
    sentences = [[words[k] for k in rng.integers(0, len(words), rng.integers(3, 61))] for _ in range(a.sentences)]
    tokens = sum(map(len, sentences))
    from engine.precision import isa_summary

    print(f"{cpu_model()} ({isa_summary()}) | threads {a.threads} | vocab {a.vocab:,}, embed/proj {a.embed}, "
          f"hidden {a.hidden}, {a.layers} layers | {a.sentences:,} sentences, {tokens:,} words")
    backends = ["paddle"] + (["onnxruntime"] if onnx_backend() else [])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "input.txt").write_text("".join(" ".join(s) + "\n" for s in sentences))
        model = write_model(a, tmp, words)
        ours = {(b, 1): our_dump(model, tmp, b, 1, a.threads) for b in backends}
        if a.threads > 1:
            ours[backends[-1], a.threads] = our_dump(model, tmp, backends[-1], a.threads, 1)
        if "onnxruntime" in backends:
            exported, export_seconds = int8_export(model, tmp, a.threads)
            ours["int8", 1] = our_dump(exported, tmp, "int8", 1, a.threads)
            if a.threads > 1:
                ours["int8", a.threads] = our_dump(exported, tmp, "int8", a.threads, 1)
        theirs = torch_dump(a, sentences, {w: i + 3 for i, w in enumerate(words)}, tmp / "torch.hdf5")
    for (backend, processes), seconds in ours.items():
        name = f"ours, {backend}" + (f", {processes} processes × 1 thread" if processes > 1 else "")
        print(f"{name:<44} {seconds:8.1f} s  {tokens / seconds:10,.0f} tokens/s")
    print(f"{'torch eval, sorted batches of 64':<44} {theirs:8.1f} s  {tokens / theirs:10,.0f} tokens/s")
    if ("int8", 1) in ours:
        print(f"{'the int8 export (once per model)':<44} {export_seconds:8.1f} s")
    for (backend, processes), seconds in ours.items():
        label = f"ratio, {backend}" + (f", {processes} processes" if processes > 1 else "")
        results.ratio(label, theirs / seconds, target=2.0, title="a corpus to HDF5 vs torch" + label[5:])
    if ("int8", 1) in ours:
        results.ratio("ratio, int8 with its export", theirs / (ours["int8", 1] + export_seconds))
    results.ratio("ratio", theirs / min(t for (_, n), t in ours.items() if n == 1))
    results.save()


def write_model(a, tmp: Path, words: list[str]) -> Path:
    import numpy as np

    from bilm.config import BiLMConfig
    from bilm.formats import write_model_arrays
    from bilm.model import variable_shapes
    from reader.vocab import SPECIAL_TOKENS, Vocabulary

    cfg = BiLMConfig(vocab_size=a.vocab, embed_size=a.embed, hidden_size=a.hidden, num_layers=a.layers,
                     softmax="full")
    (tmp / "vocab.txt").write_text("".join(t + "\n" for t in [*SPECIAL_TOKENS, *words]))
    rng = np.random.default_rng(1)
    arrays = {n: rng.normal(0, 0.05, s).astype(np.float32) for n, s in variable_shapes(cfg).items()}
    return write_model_arrays(tmp / "model", cfg, Vocabulary.load(tmp / "vocab.txt"), arrays)


def int8_export(model: Path, tmp: Path, threads: int) -> tuple[Path, float]:
    """`python -m bilm export --precision int8` of the model, checked on the corpus: (its directory, seconds)."""
    from bilm.cli import export

    start = time.perf_counter()
    export(["--model", str(model), "--output", str(tmp / "int8"), "--precision", "int8", "--check-text",
            str(tmp / "input.txt"), "--threads", str(threads)])
    return tmp / "int8", time.perf_counter() - start


def our_dump(model: Path, tmp: Path, backend: str, processes: int, threads: int) -> float:
    """Seconds to dump the corpus as `python -m bilm dump` does (`backend` int8: `model` is an int8 export,
    which the dump picks by itself)."""
    import paddle

    from bilm.embedder import ElmoEmbedder, dump_file, embedded_batches, embedded_batches_in_processes
    from reader.sentences import sorted_batches

    start, label = time.perf_counter(), backend
    if backend == "int8":
        backend = "auto"
    batches = sorted_batches(tmp / "input.txt", max_tokens=2048, max_sentences=256)
    if processes > 1:
        embedded = embedded_batches_in_processes(model, batches, "top", processes, threads, backend)
    else:
        paddle.enable_static()
        embedded = embedded_batches(ElmoEmbedder(model, backend=backend, threads=threads), batches,
                                    "top")
    dump_file(embedded, tmp / f"{label}-{processes}.hdf5")
    return time.perf_counter() - start


def torch_dump(a, sentences: list[list[str]], ids: dict[str, int], output: Path) -> float:
    import h5py

    torch = torch_threads(a.threads)
    from torch_bilm import TorchBiLM

    torch.manual_seed(0)
    model = TorchBiLM(a.vocab, a.embed, a.hidden, a.layers).eval()
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    start = time.perf_counter()
    with torch.inference_mode(), h5py.File(output, "w") as out:
        for b in range(0, len(order), 64):
            batch = [sentences[i] for i in order[b:b + 64]]
            lengths = torch.tensor([len(s) + 2 for s in batch])
            width = int(lengths.max())
            tokens = torch.zeros((len(batch), width), dtype=torch.long)
            for row, words in enumerate(batch):
                tokens[row, :len(words) + 2] = torch.tensor([0, *(ids[w] for w in words), 1])
            # The backward direction reads each sentence reversed within its length.
            steps = torch.arange(width)[None, :]
            reverse = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
            fw = model.layers(tokens, 0, training=False)[1][-1]
            bw = model.layers(tokens.gather(1, reverse), 1, training=False)[1][-1]
            bw = bw.gather(1, reverse[:, :, None].expand_as(bw))
            top = torch.cat([fw, bw], -1).numpy()
            for row, i in enumerate(order[b:b + 64]):
                out.create_dataset(str(i), data=top[row, 1:len(sentences[i]) + 1])
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
