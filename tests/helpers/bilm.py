"""biLM references and builders: numpy bilm-tf (word and character input) and fluid LSTMP, bilm-tf files,
the dump command's output, and a tiny ELMo pretraining run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

if TYPE_CHECKING:
    from bilm.pretrain import ElmoConfig

# bilm-tf LSTM sizes: cell, projection, layers.
H, P, L = 6, 4, 2
SENTENCES = ["the cat sat", "a dog ran on the mat", "cat", "the mat sat on a cat dog", "dog ran",
             "the zebra sat", "on on on on on on on on on", "a cat"]
# Character input: embedding size, characters per token, filters.
D, CHARS = 4, 50
FILTERS = [[1, 3], [2, 4], [3, 5]]  # 12 features: projected to P
UNPROJECTED = [[1, 1], [2, 1], [3, 2]]  # P features: no projection


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


class NumpyBilmTf:
    """bilm-tf's biLM from the format spec: TF LSTMCell (i, j, f, o; forget bias 1), projection, clips."""

    def __init__(self, weights: dict, embedding: np.ndarray | None, vocab: list[str], cell_clip, proj_clip):
        self.w, self.clips = weights, (cell_clip, proj_clip)
        self.emb = None if embedding is None else embedding.astype(np.float64)
        self.ids = {t: i for i, t in enumerate(vocab)}
        self.state = {}

    def token_vectors(self, tokens: list[str]) -> np.ndarray:
        return self.emb[[self.ids.get(w, self.ids["<UNK>"]) for w in tokens]]

    def cell(self, d, layer, x, h, c):
        prefix = f"RNN_{d}/RNN/MultiRNNCell/Cell{layer}/LSTMCell/"
        z = np.concatenate([x, h]) @ self.w[prefix + "W_0"] + self.w[prefix + "B"]
        i, j, f, o = np.split(z, 4)
        c = np.clip(sigmoid(f + 1.0) * c + sigmoid(i) * np.tanh(j), -self.clips[0], self.clips[0])
        h = np.clip((sigmoid(o) * np.tanh(c)) @ self.w[prefix + "W_P_0"], -self.clips[1], self.clips[1])
        return h, c

    def direction(self, d, x, row):
        outputs = []
        for layer in range(L):
            h, c = self.state.get((row, d, layer), (np.zeros(P), np.zeros(H)))
            out = []
            for t in range(len(x)):
                h, c = self.cell(d, layer, x[t], h, c)
                out.append(h + x[t] if layer > 0 else h)  # skip connections
            self.state[(row, d, layer)] = (h, c)
            x = np.array(out)
            outputs.append(x)
        return outputs

    def sentence(self, words: list[str], row: int = 0, stateful: bool = False) -> np.ndarray:
        if not stateful:
            self.state = {}
        e = self.token_vectors(["<S>", *words, "</S>"])
        fw = self.direction(0, e, row)
        bw = [y[::-1] for y in self.direction(1, e[::-1], row)]
        layers = [np.concatenate([e, e], -1)] + [np.concatenate([f, b], -1) for f, b in zip(fw, bw)]
        return np.stack(layers)[:, 1:-1]


def spec_char_ids(word: str) -> list[int]:
    """The spec's encoding, one word at a time (shifted by +1)."""
    if word in ("<S>", "</S>"):
        ids = [258, 256 if word == "<S>" else 257, 259]
    else:
        ids = [258, *word.encode("utf-8")[:CHARS - 2], 259]
    return [i + 1 for i in ids + [260] * (CHARS - len(ids))]


class NumpyCharBilmTf(NumpyBilmTf):
    """bilm-tf with character input: filters, max over positions, activation, highway, projection."""

    def __init__(self, weights, cell_clip, proj_clip, filters, activation, n_highway):
        super().__init__(weights, None, [], cell_clip, proj_clip)
        self.filters, self.activation, self.n_highway = filters, activation, n_highway

    def token_vectors(self, tokens: list[str]) -> np.ndarray:
        w = {k: v.astype(np.float64) for k, v in self.w.items()}
        table = np.vstack([np.zeros((1, D)), w["char_embed"]])
        act = (lambda x: np.maximum(x, 0)) if self.activation == "relu" else np.tanh
        out = []
        for token in tokens:
            e = table[spec_char_ids(token)]  # [50, D]
            features = []
            for i, (width, _) in enumerate(self.filters):
                kernel = w[f"CNN/W_cnn_{i}"][0]  # [width, D, n]
                conv = np.stack([sum(e[p + k] @ kernel[k] for k in range(width))
                                 for p in range(CHARS - width + 1)]) + w[f"CNN/b_cnn_{i}"]
                features.append(act(conv.max(axis=0)))
            h = np.concatenate(features)
            for k in range(self.n_highway):
                g = 1 / (1 + np.exp(-(h @ w[f"CNN_high_{k}/W_carry"] + w[f"CNN_high_{k}/b_carry"])))
                t = np.maximum(h @ w[f"CNN_high_{k}/W_transform"] + w[f"CNN_high_{k}/b_transform"], 0)
                h = g * t + (1 - g) * h
            if "CNN_proj/W_proj" in w:
                h = h @ w["CNN_proj/W_proj"] + w["CNN_proj/b_proj"]
            out.append(h)
        return np.array(out)


def write_char_bilm_tf(root: Path, seed=0, activation="relu", n_highway=2, projected=True,
                       n_characters=262) -> tuple[NumpyCharBilmTf, dict]:
    """A random character model in bilm-tf layout (options.json + weights.hdf5)."""
    filters = FILTERS if projected else UNPROJECTED
    rng = np.random.default_rng(seed)
    n = sum(c for _, c in filters)
    options = {"lstm": {"dim": H, "projection_dim": P, "n_layers": L, "cell_clip": 2.0, "proj_clip": 1.5,
                        "use_skip_connections": True},
               "char_cnn": {"activation": activation, "embedding": {"dim": D}, "filters": filters,
                            "max_characters_per_token": CHARS, "n_characters": n_characters,
                            "n_highway": n_highway}}
    (root / "options.json").write_text(json.dumps(options))
    weights = {"char_embed": rng.normal(0, 1, (261, D))}
    for i, (width, count) in enumerate(filters):
        weights[f"CNN/W_cnn_{i}"] = rng.normal(0, 0.5, (1, width, D, count))
        weights[f"CNN/b_cnn_{i}"] = rng.normal(0, 0.2, count)
    for k in range(n_highway):
        for gate in ("carry", "transform"):
            weights[f"CNN_high_{k}/W_{gate}"] = rng.normal(0, 0.4, (n, n))
            weights[f"CNN_high_{k}/b_{gate}"] = rng.normal(0, 0.2, n)
    if projected:
        weights["CNN_proj/W_proj"] = rng.normal(0, 0.4, (n, P))
        weights["CNN_proj/b_proj"] = rng.normal(0, 0.2, P)
    for d in (0, 1):
        for layer in range(L):
            prefix = f"RNN_{d}/RNN/MultiRNNCell/Cell{layer}/LSTMCell/"
            weights[prefix + "W_0"] = rng.normal(0, 0.8, (2 * P, 4 * H))
            weights[prefix + "B"] = rng.normal(0, 0.3, 4 * H)
            weights[prefix + "W_P_0"] = rng.normal(0, 0.8, (H, P))
    weights = {k: v.astype(np.float32) for k, v in weights.items()}
    with h5py.File(root / "weights.hdf5", "w") as f:
        for name, value in weights.items():
            f.create_dataset(name, data=value)
    return NumpyCharBilmTf(weights, 2.0, 1.5, filters, activation, n_highway), weights


def import_char(root: Path, out: Path, *extra: str) -> Path:
    from bilm.cli import import_bilm_tf as import_main

    import_main(["--options", str(root / "options.json"), "--weights", str(root / "weights.hdf5"),
                 "--output", str(out), *extra])
    return out


def dump(model: Path, tmp_path: Path, batch_size: int, stateful=False, layers="all",
         sentences: list[str] = SENTENCES, extra: tuple = ()) -> dict[str, np.ndarray]:
    from bilm.cli import dump as dump_main

    text = tmp_path / "sentences.txt"
    text.write_text("\n".join(sentences) + "\n")
    out = tmp_path / f"dump-{batch_size}-{stateful}-{layers}.hdf5"
    # Paddle's program against the references (`--backend auto` would take ONNX Runtime where the
    # extra is installed; tests/test_onnx.py checks that both give the same file).
    backend = [] if "--backend" in extra else ["--backend", "paddle"]
    args = ["--model", str(model), "--input", str(text), "--output", str(out), "--batch-size", str(batch_size),
            "--layers", layers, *backend, *extra] + (["--stateful"] if stateful else [])
    dump_main(args)
    with h5py.File(out, "r") as f:
        names = json.loads(f["sentence_to_index"][0])
        # AllenNLP's index: each sentence's words joined by spaces.
        assert {names[" ".join(s.split())] for s in sentences} == {str(i) for i in range(len(sentences))}
        return {k: f[k][()] for k in f if k != "sentence_to_index"}


def numpy_lstmp(x, r0, c0, gate_w, weight, proj, bias, cell_clip, proj_clip, mask=None):
    """fluid `lstmp`: gate blocks [c~ | i | f | o], no forget bias, identity projection."""
    B, T, _ = x.shape
    H = proj.shape[0]
    r, c = r0.copy(), c0.copy()
    out = np.zeros((B, T, proj.shape[1]), np.float64)
    for t in range(T):
        z = x[:, t] @ gate_w + bias + r @ weight
        cand, i, f, o = (z[:, k * H:(k + 1) * H] for k in range(4))
        c_new = np.tanh(cand) * sigmoid(i) + c * sigmoid(f)
        if cell_clip > 0:
            c_new = np.clip(c_new, -cell_clip, cell_clip)
        r_new = (sigmoid(o) * np.tanh(c_new)) @ proj
        if proj_clip > 0:
            r_new = np.clip(r_new, -proj_clip, proj_clip)
        m = np.ones((B, 1)) if mask is None else mask[:, t:t + 1]
        r = m * r_new + (1 - m) * r
        c = m * c_new + (1 - m) * c
        out[:, t] = m * r_new
    return out, r, c


def tiny_config(corpus: dict, output: Path, **overrides) -> ElmoConfig:
    """A small biLM on `corpus` (write_toy_corpus's paths), 20 steps unless `overrides` say otherwise."""
    from bilm.pretrain import ElmoConfig
    from engine.config import load_config

    items = {
        "data.source": "files", "data.train": corpus["train"], "data.dev": corpus["dev"],
        "data.vocab": corpus["vocab"], "data.num_steps": 8, "data.num_workers": 0, "data.prefetch": 4,
        "model.embed_size": 16, "model.hidden_size": 32, "model.softmax": "sampled", "model.num_samples": 12,
        "model.cell_clip": 3.0, "model.proj_clip": 3.0, "model.dropout": 0.1,
        "train.output_dir": str(output), "train.batch_size": 8, "train.max_steps": 20,
        "train.log_every": 10, "train.save_every": 0, "train.eval_every": 0, "train.seed": 3,
        "optim.learning_rate": 0.2, "runtime.threads": 2,
    }
    items.update(overrides)
    return load_config(ElmoConfig, None, [f"{k}={v}" for k, v in items.items()])


def train(cfg: ElmoConfig, resume: bool = False) -> dict:
    from bilm.pretrain import ElmoPretraining
    from engine.trainer import Trainer

    return Trainer(ElmoPretraining(cfg), cfg.train, cfg.optim, cfg.runtime).fit(resume=resume)
