"""A toy language an LSTM picks up in a few dozen steps: plain text shards and a chunk-tagged version."""

from __future__ import annotations

import random
from pathlib import Path

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
