"""The bidirectional LSTM language model behind ELMo, as Paddle static programs.

In your own network: `bilm.ElmoModel`, `bilm.emb`, `bilm.elmo_encoder`
(or `bilm.elmo` for both), `bilm.scalar_mix` and `bilm.load_pretrained`;
outside one, `bilm.ElmoEmbedder` (see `bilm.vectors`); for raw text,
`bilm.segment(text, vocab)` (see `reader.segment`).

- `bilm.config`: the architecture (`BiLMConfig`).
- `bilm.model`: the network: parameters under the fluid names, token
  encoders (word table, character CNN), the LSTMP cell, the stacked encoder.
- `bilm.lm`: the language model on top: both directions, sampled and full
  softmax, carried state, perplexity.
- `bilm.vectors`: ELMo vectors, the API users call (above): in a network, from Python, in
  HDF5 files, as an inference program.
- `bilm.formats`: model directories and the bilm-tf / AllenNLP format.
- `bilm.pretrain`: the pretraining job (`sh run.sh`).
- `bilm.cli`: the command lines, `python -m bilm.<verb>` for `train`,
  `evaluate`, `export`, `dump`, `import_bilm_tf`, `export_bilm_tf`,
  `import_fluid`, `cache_token_embeddings`.
"""

__all__ = ["ElmoEmbedder", "ElmoModel", "LoadReport", "elmo", "elmo_encoder", "emb", "load_pretrained",
           "scalar_mix", "segment"]


def __getattr__(name: str):
    # Imported on first use, so that importing `bilm` (a reader worker process
    # does, to unpickle its recipe) does not start Paddle.
    if name in __all__:
        import importlib

        module = "reader.segment" if name == "segment" else "bilm.vectors"
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'bilm' has no attribute '{name}'")
