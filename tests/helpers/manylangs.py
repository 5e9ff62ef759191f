"""Tiny random ELMoForManyLangs (HIT-SCIR) model directories, built with the package's own classes in its
on-disk layout, and reference outputs from the package's own `Embedder`: importer tests without downloads."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from unittest import mock

import numpy as np

# The package's specials, in the order its trainer (biLM.py) assigns them: '<oov>' must be word id 0.
WORD_SPECIALS = ["<oov>", "<bos>", "<eos>", "<pad>"]
# frontend.create_one_batch needs all six; '<bos>'/'<eos>' are the sentence markers' only "character".
CHAR_SPECIALS = ["<oov>", "<pad>", "<bos>", "<eos>", "<bow>", "<eow>"]
# The package's .dic reader strips each line, so a whitespace token's line '\u3000\t24' becomes '24', which it
# reads back as '\u3000' (the ideographic space): released models hold such a line.
WHITESPACE = "\u3000"
WORDS = ["我", "们", "我们", "喜欢", "自然", "语言", "处理", "北京", "大学", "the", "cat", "sat", "on", "mat",
         "a", "dog", ".", ",", "，", "。"]
# The package's shipped config and the sizes it holds (both shipped configs are identical).
SHIPPED_CONFIG = "cnn_50_100_512_4096_sample.json"
SHIPPED_SIZES = dict(word_dim=100, char_dim=50,
                     filters=((1, 32), (2, 32), (3, 64), (4, 128), (5, 256), (6, 512), (7, 1024)),
                     n_highway=2, projection_dim=512, cell=4096, n_layers=2, max_chars=50)


def make_config(*, word_dim, char_dim, filters, n_highway, projection_dim, cell, n_layers, max_chars) -> dict:
    """The package's model config (the JSON its `config_path` names)."""
    return {"encoder": {"name": "elmo", "projection_dim": projection_dim, "cell_clip": 3, "proj_clip": 3,
                        "dim": cell, "n_layers": n_layers},
            "token_embedder": {"name": "cnn", "activation": "relu", "filters": [list(f) for f in filters],
                               "n_highway": n_highway, "word_dim": word_dim, "char_dim": char_dim,
                               "max_characters_per_token": max_chars},
            "classifier": {"name": "sampled_softmax", "n_samples": 8192},
            "dropout": 0.1}


def lexicon(specials: list[str], tokens) -> dict[str, int]:
    """Specials first, then `tokens` in order, then the whitespace token; contiguous ids, no duplicates."""
    order = dict.fromkeys([*specials, *tokens, WHITESPACE])
    return {token: i for i, token in enumerate(order)}


def read_dic(path: Path) -> dict[str, int]:
    """The package's own .dic reading rule (elmo.Embedder.get_model), to check what we wrote."""
    table = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            tokens = line.strip().split("\t")
            if len(tokens) == 1:
                tokens.insert(0, WHITESPACE)
            table[tokens[0]] = int(tokens[1])
    return table


def write_dic(path: Path, table: dict[str, int]):
    """`token\\tid` lines, as the package's trainer prints them (the whitespace token too: '\\u3000\\t24')."""
    path.write_text("".join(f"{token}\t{i}\n" for token, i in table.items()), encoding="utf-8")
    # A token with tabs or surrounding whitespace would silently come back as something else.
    assert read_dic(path) == table, f"{path.name} does not read back as written"


def random_model(config: dict, word_lexicon, char_lexicon, seed: int):
    """The package's Model, constructed as Embedder.get_model does, every parameter then redrawn from
    N(0, 0.5) so highway gates, biases and the pad rows are all non-trivial, as in released models."""
    import torch
    from elmoformanylangs.frontend import Model
    from elmoformanylangs.modules.embedding_layer import EmbeddingLayer

    dims = config["token_embedder"]
    # fork_rng: the seeded construction must not disturb the caller's torch RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        word = None if word_lexicon is None else EmbeddingLayer(dims["word_dim"], word_lexicon, fix_emb=False,
                                                                embs=None)
        char = None if char_lexicon is None else EmbeddingLayer(dims["char_dim"], char_lexicon, fix_emb=False,
                                                                embs=None)
        model = Model(config, word, char, use_cuda=False)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5, generator=generator)
    return model.eval()


def save_state(module, path: Path, legacy: bool):
    """torch.save of the state dict, zip (default) or torch's legacy pickle format; checked on disk."""
    import torch

    torch.save(module.state_dict(), path, _use_new_zipfile_serialization=not legacy)
    is_zip = path.read_bytes()[:2] == b"PK"
    assert is_zip != legacy, f"{path.name}: expected {'legacy' if legacy else 'zip'} format"


def build_model(directory, *, word_dim=8, char_dim=6, filters=((1, 4), (2, 4), (3, 8)), n_highway=2,
                projection_dim=8, cell=16, n_layers=2, max_chars=10, words=None, chars=None, legacy=False,
                config_by_name=False, seed=0) -> Path:
    """A random ELMoForManyLangs model directory: config.json (+ `<name>.json`), word.dic, char.dic,
    token_embedder.pkl and encoder.pkl.

    word_dim=0 / char_dim=0 drop the word embedding / the character CNN (char.dic is then not written;
    word.dic always is, as the package's trainer does). `words` / `chars` are the non-special vocabularies
    (default: WORDS and its characters); specials come first and a whitespace token ('\\u3000') last.
    legacy=True saves the .pkl files in torch's pre-1.6 (non-zip) format. config_by_name=True writes no
    config file and points config_path at the package's shipped SHIPPED_CONFIG, forcing its sizes
    (SHIPPED_SIZES; the size arguments are ignored): a ~95M-parameter model, ~380 MB on disk.
    """
    if config_by_name:
        sizes = dict(SHIPPED_SIZES)
    else:
        sizes = dict(word_dim=word_dim, char_dim=char_dim, filters=filters, n_highway=n_highway,
                     projection_dim=projection_dim, cell=cell, n_layers=n_layers, max_chars=max_chars)
    config = make_config(**sizes)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    words = WORDS if words is None else list(words)
    word_lexicon = lexicon(WORD_SPECIALS, words)
    write_dic(directory / "word.dic", word_lexicon)
    char_lexicon = None
    if sizes["char_dim"] > 0:
        chars = [c for w in words for c in w] if chars is None else list(chars)
        char_lexicon = lexicon(CHAR_SPECIALS, chars)
        write_dic(directory / "char.dic", char_lexicon)

    model = random_model(config, word_lexicon if sizes["word_dim"] > 0 else None, char_lexicon, seed)
    save_state(model.token_embedder, directory / "token_embedder.pkl", legacy)
    save_state(model.encoder, directory / "encoder.pkl", legacy)

    name = SHIPPED_CONFIG if config_by_name else (
        f"cnn_{sizes['char_dim']}_{sizes['word_dim']}_{sizes['projection_dim']}_{sizes['cell']}_sample.json")
    if not config_by_name:
        (directory / name).write_text(json.dumps(config, indent=2))
    # Released models' config.json is the trainer's argparse namespace; only config_path is read.
    args = {"config_path": name, "model": str(directory), "batch_size": 32, "max_sent_len": 20, "seed": seed,
            "gpu": -1}
    (directory / "config.json").write_text(json.dumps(args, ensure_ascii=False))
    return directory


def reference_layers(directory, sentences, output_layer=-2) -> list[np.ndarray]:
    """The package's own `Embedder(directory).sents2elmo(sentences, output_layer)` as float64 arrays, in input
    order: (n_layers + 1, len, 2P) for -2, (len, 2P) for -1, a single layer for 0..n_layers.

    Deterministic: CPU only, one batch, and fresh encoder states (ElmobiLm is stateful across calls).
    """
    import torch
    from elmoformanylangs import Embedder

    sentences = [list(s) for s in sentences]
    # The package logs its whole model at INFO on every load; keep its warnings (e.g. config fallbacks).
    log = logging.getLogger("elmoformanylangs")
    level, state = log.level, random.getstate()
    log.setLevel(logging.WARNING)
    try:
        # Embedder decides CUDA once, at construction, from torch.cuda.is_available().
        with mock.patch.object(torch.cuda, "is_available", return_value=False):
            embedder = Embedder(str(directory), batch_size=len(sentences))
        embedder.model.encoder.reset_states()
        with torch.no_grad():
            outputs = embedder.sents2elmo(sentences, output_layer)
    finally:
        # create_batches shuffles batch order with the global `random`: leave the caller's sequence intact.
        log.setLevel(level)
        random.setstate(state)
    return [np.asarray(out, dtype=np.float64) for out in outputs]
