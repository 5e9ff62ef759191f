"""The tagger network: word embedding ⊕ ELMo → stacked BiGRU → emissions → linear-chain CRF.

Feeds (`reader.tagging` names): `word_ids` [B,T] (the task vocabulary),
`elmo_ids` (with ELMo: ids [B,T] in the biLM vocabulary, or character ids
[B,T,C] for a character model), `lengths` [B], and `tags`
[B,T] when a loss is built. Padding never reaches real tokens: the GRU takes
the lengths, the CRF masks, the ELMo encoder starts every sentence afresh.
"""

from __future__ import annotations

from dataclasses import dataclass

import paddle
from paddle.nn.initializer import Uniform

import bilm
from engine.ops import SEED_FEED, seed_input
from reader.tagging import ELMO_IDS, LENGTHS, TAGS, WORD_IDS
from tagger.crf import crf_loss, viterbi_decode

CRF_WEIGHT = "crfw"
# An exported tagger directory: the program, the tagger's config and its vocabularies.
INFERENCE_PREFIX, TAGS_OUTPUT = "tagger", "tags"
TAGGER_FILE, WORDS_FILE, TAGS_FILE, ELMO_VOCAB_FILE = "tagger_config.json", "words.txt", "tags.txt", "elmo_vocab.txt"
ELMO_CHARACTERS_FILE = "elmo_characters.json"  # an ELMo with its own character vocabulary (ELMoForManyLangs)


@dataclass
class TaggerConfig:
    """The `model:` section: the tagger's architecture and the ELMo it reads."""

    use_elmo: bool = True  # concatenate frozen ELMo vectors to the task's word embedding
    elmo_model: str = "output/elmo/model"  # a pretrained (or imported) biLM model directory
    elmo_l2: float = 0.001  # L2 decay of the scalar-mix weights ELMo_w
    elmo_dropout: float = 0.5  # on the ELMo vectors, training only
    word_embed_size: int = 128  # width of the task's own word embedding
    gru_hidden: int = 256  # GRU units per direction
    gru_layers: int = 2  # stacked bidirectional GRU layers

    def __post_init__(self):
        for name in ("word_embed_size", "gru_hidden", "gru_layers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass
class TaggerGraph:
    """A built tagger program: its feeds, and the loss (training) or the decoded tags."""

    feeds: dict
    emissions: object  # [B,T,n]
    loss: object | None  # mean CRF negative log-likelihood per sentence
    decoded: object | None  # [B,T] int64, 0 at padding


def build_tagger(cfg: TaggerConfig, word_vocab_size: int, num_tags: int, elmo_model: "bilm.ElmoModel | None",
                 training: bool, allowed=None) -> TaggerGraph:
    """Builds the tagger into the current program.

    `training=True`: the CRF loss, and ELMo dropout seeded by the step's
    `dropout_seed` feed; otherwise the Viterbi decoding (the executor runs
    every op of a program, so each program holds only what it needs),
    restricted to the transitions `allowed` (see `crf.viterbi_decode`).
    """
    feeds = {WORD_IDS: paddle.static.data(WORD_IDS, [-1, -1], "int64"),
             LENGTHS: paddle.static.data(LENGTHS, [-1], "int64")}
    if training:
        feeds[SEED_FEED] = seed_input()
    uniform = paddle.ParamAttr(initializer=Uniform(-0.1, 0.1))
    table = paddle.static.create_parameter([word_vocab_size, cfg.word_embed_size], "float32",
                                           attr=paddle.ParamAttr(name="word_emb", initializer=Uniform(-0.1, 0.1)))
    x = paddle.nn.functional.embedding(feeds[WORD_IDS], table)
    if elmo_model is not None:
        feeds[ELMO_IDS] = paddle.static.data(ELMO_IDS, elmo_model.input_shape, "int64")
        vectors = bilm.elmo(feeds[ELMO_IDS], feeds[LENGTHS], elmo_model, l2_coef=cfg.elmo_l2,
                            dropout=cfg.elmo_dropout if training else 0.0,
                            dropout_seed=feeds.get(SEED_FEED))
        x = paddle.concat([vectors, x], axis=-1)
    gru = paddle.nn.GRU(x.shape[-1], cfg.gru_hidden, num_layers=cfg.gru_layers, direction="bidirect",
                        weight_ih_attr=uniform, weight_hh_attr=uniform)
    # The layer also creates a flat buffer for cuDNN (`_flat_weight`, a copy the
    # op never reads): no gradient can reach it, so it is not trained.
    for buffer in getattr(gru, "_flat_weight", []):
        buffer.stop_gradient = True
    hidden, _ = gru(x, sequence_length=feeds[LENGTHS])
    emissions = paddle.nn.Linear(2 * cfg.gru_hidden, num_tags, weight_attr=uniform)(hidden)
    crfw = paddle.static.create_parameter([num_tags + 2, num_tags], "float32",
                                          attr=paddle.ParamAttr(name=CRF_WEIGHT, initializer=Uniform(-0.1, 0.1)))
    if training:
        feeds[TAGS] = paddle.static.data(TAGS, [-1, -1], "int64")
        return TaggerGraph(feeds, emissions, crf_loss(emissions, feeds[TAGS], feeds[LENGTHS], crfw).mean(), None)
    return TaggerGraph(feeds, emissions, None, viterbi_decode(emissions, feeds[LENGTHS], crfw, allowed))
