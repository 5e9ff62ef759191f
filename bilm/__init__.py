"""The bidirectional LSTM language model behind ELMo, as Paddle static programs.

- `bilm.lstmp`: the clipped LSTM-with-projection layer (fluid `lstmp` formulas).
- `bilm.params`: the biLM variables under the fluid release's names.
- `bilm.lm`: the pretraining graph (both directions, loss, carried state).
- `bilm.encoder`: all ELMo layers for padded sentences (inference).
- `bilm.sampled_softmax`: full and sampled softmax losses.
- `bilm.model_dir`: model directories and the inference export.
- Command lines: `python -m bilm.train`, `bilm.evaluate`, `bilm.export`.
"""
