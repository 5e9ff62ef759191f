"""The bidirectional LSTM language model behind ELMo, as Paddle static programs.

In your own network: `bilm.ElmoModel`, `bilm.emb`, `bilm.elmo_encoder`
(or `bilm.elmo` for both), `bilm.scalar_mix` and `bilm.load_pretrained`;
outside one, `bilm.ElmoEmbedder` (see `bilm.embedder`); for raw text,
`bilm.segment(text, vocab)` (see `reader.segment`).

- `bilm.config`: the architecture (`BiLMConfig`).
- `bilm.model`: the network: parameters under the fluid names, token
  encoders (word table, character CNN), the LSTMP cell, the stacked encoder.
- `bilm.lm`: the language model on top: both directions, sampled and full
  softmax, carried state, perplexity.
- `bilm.vectors`: ELMo in your own network (above).
- `bilm.embedder`: ELMo vectors outside a network: from Python, in HDF5 files, as an
  inference program.
- `bilm.formats`: model directories and the bilm-tf / AllenNLP format.
- `bilm.manylangs`: ELMoForManyLangs models (its word+char token encoder, its files).
- `bilm.pretrain`: the pretraining job (`sh run.sh`).
- `bilm.cli`: the command lines, `python -m bilm VERB` for `train`,
  `evaluate`, `export`, `dump`, `import-bilm-tf`, `export-bilm-tf`,
  `import-fluid`, `import-elmoformanylangs`, `cache-token-embeddings`.
"""

__all__ = ["ElmoEmbedder", "ElmoModel", "LoadReport", "elmo", "elmo_encoder", "emb", "load_pretrained",
           "scalar_mix", "segment"]


def __getattr__(name: str):
    # Imported on first use, so that importing `bilm` (a reader worker process
    # does, to unpickle its recipe) does not start Paddle; Paddle's start-up
    # chatter is turned off first, as the command lines do.
    if name in __all__:
        import importlib

        from engine.command import quiet

        quiet()

        module = {"segment": "reader.segment", "ElmoEmbedder": "bilm.embedder"}.get(name, "bilm.vectors")
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'bilm' has no attribute '{name}'")
