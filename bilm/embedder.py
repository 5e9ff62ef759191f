"""ELMo vectors for batches of tokenized sentences, from a model directory.

Word models look words up in the model's vocabulary (unknown words become
`<UNK>`); character models spell every word, so none is unknown.

`ElmoEmbedder` builds the encoder program once and runs it batch after batch.
Stateless (the default) starts every sentence from a zero LSTM state, so a
sentence always gets the same vectors. Stateful reproduces bilm-tf: row i of
each batch starts from the final state of row i of the previous batch (rows
beyond a smaller batch keep theirs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import paddle

from bilm.encoder import encode
from bilm.lm import INIT_CELL, INIT_HIDDEN, zero_states
from bilm.model_dir import load_model_variables, read_model_dir
from bilm.params import create_params
from bilm.token_embedding import input_data
from reader.chars import padded_char_ids


class ElmoEmbedder:
    """Computes all ELMo layers [n, L+1, T, 2P] for lists of tokens."""

    def __init__(self, model_dir: str | Path, place, stateful: bool = False, max_batch_size: int = 64):
        self.cfg, self.vocab = read_model_dir(model_dir)
        self.stateful = stateful
        self.program = paddle.static.Program()
        with paddle.static.program_guard(self.program, paddle.static.Program()):
            ids = input_data("tokens", self.cfg)
            lengths = paddle.static.data("lengths", [-1], "int64")
            states = {}
            if stateful:
                L, cfg = self.cfg.num_layers, self.cfg
                states = {"init_hidden": paddle.static.data(INIT_HIDDEN, [2 * L, -1, cfg.embed_size], "float32"),
                          "init_cell": paddle.static.data(INIT_CELL, [2 * L, -1, cfg.hidden_size], "float32")}
            params = create_params(self.cfg, with_softmax=False)
            self.output = encode(params, self.cfg, ids, lengths, self.vocab.bos_id, self.vocab.eos_id, **states)
        self.exe = paddle.static.Executor(place)
        load_model_variables(model_dir, self.cfg, place, with_softmax=False)
        self.state = zero_states(self.cfg, max_batch_size) if stateful else None

    def embed(self, sentences: list[list[str]]) -> np.ndarray:
        """Layers for each sentence, padded to the longest: [n, L+1, T, 2P] float32."""
        n = len(sentences)
        if n == 0:
            return np.zeros((0, self.cfg.num_layers + 1, 0, 2 * self.cfg.embed_size), np.float32)
        lengths = np.array([len(s) for s in sentences], np.int64)
        feed = {"tokens": self._tokens(sentences, lengths), "lengths": lengths}
        if not self.stateful:
            (layers,) = self.exe.run(self.program, feed=feed, fetch_list=[self.output.layers])
            return layers
        self._grow_state(n)
        feed.update({name: value[:, :n] for name, value in self.state.items()})
        layers, hidden, cell = self.exe.run(self.program, feed=feed, fetch_list=[
            self.output.layers, self.output.final_hidden, self.output.final_cell])
        self.state[INIT_HIDDEN][:, :n] = hidden
        self.state[INIT_CELL][:, :n] = cell
        return layers

    def _tokens(self, sentences: list[list[str]], lengths: np.ndarray) -> np.ndarray:
        if self.cfg.input == "char":
            return padded_char_ids(sentences, self.cfg.char_cnn.max_characters)
        ids = np.zeros((len(sentences), max(1, lengths.max())), np.int64)
        for i, words in enumerate(sentences):
            ids[i, : len(words)] = self.vocab.encode(words, boundaries=False)
        return ids

    def _grow_state(self, rows: int) -> None:
        have = self.state[INIT_HIDDEN].shape[1]
        if rows > have:
            extra = zero_states(self.cfg, rows - have)
            self.state = {k: np.concatenate([v, extra[k]], axis=1) for k, v in self.state.items()}
