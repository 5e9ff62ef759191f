"""Shared fixtures: a fresh Paddle scope per test and a tiny learnable corpus."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")

# A toy language with structure an LSTM picks up in a few dozen steps.
_SUBJECTS = ["the cat", "a dog", "the bird", "my friend", "the teacher", "a child"]
_VERBS = ["sees", "likes", "finds", "follows", "helps"]
_OBJECTS = ["the ball", "a tree", "the house", "some water", "the river", "a book"]
_ENDINGS = [".", "today .", "again .", "in the park ."]


def toy_sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join([rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS), rng.choice(_ENDINGS)])
            for _ in range(n)]


def write_toy_corpus(root: Path, train_sentences: int = 600, dev_sentences: int = 100,
                     shards: int = 3) -> dict[str, str]:
    """Writes train shards, one dev shard and a frequency-sorted vocabulary."""
    from collections import Counter

    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "dev").mkdir(exist_ok=True)
    train = toy_sentences(train_sentences, seed=1)
    for k in range(shards):
        (root / "train" / f"shard-{k}.txt").write_text("\n".join(train[k::shards]) + "\n")
    (root / "dev" / "shard-0.txt").write_text("\n".join(toy_sentences(dev_sentences, seed=2)) + "\n")
    counts = Counter(w for s in train for w in s.split())
    words = sorted(counts, key=lambda w: (-counts[w], w))
    (root / "vocab.txt").write_text("\n".join(["<S>", "</S>", "<UNK>", *words]) + "\n")
    return {"train": str(root / "train" / "*.txt"), "dev": str(root / "dev" / "*.txt"),
            "vocab": str(root / "vocab.txt")}


@pytest.fixture
def toy_corpus(tmp_path) -> dict[str, str]:
    return write_toy_corpus(tmp_path / "corpus")


@pytest.fixture
def static_scope():
    """Static mode and a scope of its own, so tests never see each other's variables."""
    import paddle

    paddle.enable_static()
    scope = paddle.static.Scope()
    with paddle.static.scope_guard(scope):
        yield scope


# Chunk-tagged version of the toy language (LAC spelling: TYPE-B / TYPE-I).
def _chunk(phrase: str, chunk_type: str) -> list[tuple[str, str]]:
    words = phrase.split()
    return [(w, f"{chunk_type}-{'B' if i == 0 else 'I'}") for i, w in enumerate(words)]


def toy_tagged(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        pairs = _chunk(rng.choice(_SUBJECTS), "NP") + _chunk(rng.choice(_VERBS), "VP")
        pairs += _chunk(rng.choice(_OBJECTS), "NP")
        ending = rng.choice(_ENDINGS).split()
        if len(ending) > 1:
            pairs += _chunk(" ".join(ending[:-1]), "PP" if ending[0] == "in" else "ADV")
        pairs.append((".", "O"))
        lines.append(" ".join(w for w, _ in pairs) + "\t" + " ".join(t for _, t in pairs))
    return lines


def write_toy_tagging(root: Path, train: int = 300, dev: int = 60) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.tsv").write_text("\n".join(toy_tagged(train, seed=3)) + "\n")
    (root / "dev.tsv").write_text("\n".join(toy_tagged(dev, seed=4)) + "\n")
    return {"train": str(root / "train.tsv"), "dev": str(root / "dev.tsv")}


def assert_backends_agree(prefix, arrays: dict, rows: int = 8) -> dict:
    """An exported program's ONNX file computes what `paddle.inference` does (to 1e-5) on the first
    `rows` of `arrays` (keys the program does not take are ignored); returns the Paddle outputs."""
    import numpy as np

    from engine.inference import InferenceProgram

    feeds = {name: value[:rows] for name, value in arrays.items()}
    ours = InferenceProgram(prefix).run(feeds)
    onnx = InferenceProgram(prefix, backend="onnxruntime").run(feeds)
    assert ours.keys() == onnx.keys()
    for name in ours:
        np.testing.assert_allclose(onnx[name], ours[name], atol=1e-5, err_msg=name)
    return ours
