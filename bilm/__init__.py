"""The bidirectional LSTM language model behind ELMo, as Paddle static programs.

In your own network: `bilm.ElmoModel`, `bilm.emb`, `bilm.elmo_encoder`
(or `bilm.elmo` for both) and `bilm.load_pretrained` (see `bilm.downstream`).

- `bilm.lstmp`: the clipped LSTM-with-projection layer (fluid `lstmp` formulas).
- `bilm.params`: the biLM variables under the fluid release's names.
- `bilm.lm`: the pretraining graph (both directions, loss, carried state).
- `bilm.encoder`: all ELMo layers for padded sentences (inference).
- `bilm.sampled_softmax`: full and sampled softmax losses.
- `bilm.model_dir`: model directories and the inference export.
- Command lines: `python -m bilm.train`, `bilm.evaluate`, `bilm.export`.
"""

__all__ = ["ElmoModel", "LoadReport", "elmo", "elmo_encoder", "emb", "load_pretrained", "scalar_mix"]


def __getattr__(name: str):
    # Imported on first use: `python -m bilm.train` re-imports this package in
    # its reader processes, which must stay free of Paddle.
    if name in __all__:
        import importlib

        return getattr(importlib.import_module("bilm.downstream"), name)
    raise AttributeError(f"module 'bilm' has no attribute '{name}'")
