"""Tiny LUKE assets the tests build themselves: a BPE vocabulary, an entity vocabulary, HF models."""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = ["Top seed Ana Ivanovic said on Thursday she could hardly believe her luck.",
          "Beyoncé lives in Los Angeles, a city in California.",
          "The netcord helped the new world number one avoid a humiliating exit at Wimbledon.",
          "Ünïcödé wörds and emoji 🙂 are bytes too; naïve café résumé.",
          "Where does Beyoncé live? Who won at Wimbledon? What did the netcord do?"]
ENTITIES = {"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "[MASK2]": 3, "Ana Ivanovic": 4, "Wimbledon": 5,
            "Beyoncé": 6, "Los Angeles": 7}
SIZES = dict(vocab_size=100, entity_vocab_size=20, hidden_size=32, entity_emb_size=16, num_hidden_layers=2,
             num_attention_heads=4, intermediate_size=64, max_position_embeddings=80, type_vocab_size=1,
             layer_norm_eps=1e-5, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


def write_tokenizer(root: Path) -> Path:
    """vocab.json + merges.txt (byte-level BPE trained on CORPUS) + entity_vocab.json."""
    import tokenizers

    root.mkdir(parents=True, exist_ok=True)
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS * 3, vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(root))
    (root / "entity_vocab.json").write_text(json.dumps(ENTITIES))
    return root


def save_hf_luke(root: Path, cls: str = "LukeModel", seed: int = 0, **overrides):
    """A tiny random HF `cls` (LukeModel, LukeForMaskedLM, ...) saved with its tokenizer files in
    `root`/hf; returns (the model, in eval mode, and that directory)."""
    import torch
    import transformers

    src = write_tokenizer(root / "hf")
    vocab = json.loads((src / "vocab.json").read_text())
    torch.manual_seed(seed)
    config = transformers.LukeConfig(**{**SIZES, "vocab_size": len(vocab) + 2, "entity_vocab_size": len(ENTITIES),
                                        **overrides})
    model = getattr(transformers, cls)(config).eval()
    model.save_pretrained(src)
    return model, src


def write_luke_model(root: Path, seed: int = 0, **overrides) -> Path:
    """A tiny random HF LukeModel saved with its tokenizer files, converted into our model directory."""
    from luke_static.formats import convert

    _, src = save_hf_luke(root, seed=seed, **overrides)
    convert("hf", src, root / "model")
    return root / "model"
