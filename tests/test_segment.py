"""Raw Chinese text cut into a model's vocabulary words: by maximum matching, with jieba, in every command."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from engine.errors import ConfigError
from reader.segment import Segmenter, segment
from reader.vocab import Vocabulary

from helpers.bilm import tiny_config, train

WORDS = ["<S>", "</S>", "<UNK>", "我们", "中国", "中国人", "北京", "天安门", "的", "是", "人", "在", "爱"]
SENTENCES = ["我们是中国人", "我爱北京天安门", "北京 是 中国 的", "在北京的中国人爱天安门。", "ELMo在北京"]


@pytest.mark.parametrize("mode", ["vocab", "jieba"])
def test_every_word_is_in_the_vocabulary_or_one_character(mode):
    if mode == "jieba":
        pytest.importorskip("jieba", reason="jieba not installed (the jieba extra)")
    split = Segmenter(mode, WORDS)
    for text in SENTENCES:
        words = split(text)
        assert "".join(words) == "".join(text.split()), (text, words)
        # jieba keeps a run of Latin letters together (`ELMo`); maximum matching spells it out.
        assert all(w in WORDS or len(w) == 1 or (mode == "jieba" and w.isascii()) for w in words), (text, words)
    if mode == "vocab":  # the longest match first
        assert split("我们是中国人") == ["我们", "是", "中国人"]
        assert split("在北京的中国人爱天安门。") == ["在", "北京", "的", "中国人", "爱", "天安门", "。"]
        assert segment("北京 是 中国 的", Vocabulary(WORDS)) == ["北京", "是", "中国", "的"]


def test_without_jieba_the_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "jieba", None)
    with pytest.raises(ConfigError, match=r"segment 'jieba' needs jieba: pip install -e '.\[jieba\]'"):
        Segmenter("jieba", WORDS)


def test_a_segmenter_travels_to_worker_processes():
    import pickle

    split = Segmenter("vocab", WORDS)
    assert pickle.loads(pickle.dumps(split))("我们是中国人") == split("我们是中国人")


def test_the_corpus_reader_and_dump_read_raw_text(tmp_path, static_scope):
    from bilm.cli import dump
    from bilm.config import BiLMConfig
    from bilm.formats import write_model_arrays
    from bilm.model import variable_shapes
    from reader.shards import encode_shard

    (tmp_path / "v.txt").write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    vocab = Vocabulary.load(tmp_path / "v.txt")
    (tmp_path / "raw.txt").write_text("我们是中国人\n我爱北京天安门\n", encoding="utf-8")
    shard = encode_shard(str(tmp_path / "raw.txt"), vocab, split=Segmenter("vocab", vocab.tokens))
    assert [vocab.tokens[i] for i in shard.sentence(0)] == ["<S>", "我们", "是", "中国人", "</S>"]
    assert [vocab.tokens[i] for i in shard.sentence(1)][1:-1] == ["<UNK>", "爱", "北京", "天安门"]  # 我 is unknown

    cfg = BiLMConfig(vocab_size=len(vocab), embed_size=4, hidden_size=6, num_layers=1, softmax="full")
    rng = np.random.default_rng(0)
    model = write_model_arrays(tmp_path / "model", cfg, vocab,
                               {n: rng.normal(0, 0.5, s).astype(np.float32) for n, s in variable_shapes(cfg).items()})
    done = dump(["--model", str(model), "--input", str(tmp_path / "raw.txt"), "--output", str(tmp_path / "v.hdf5"),
                 "--segment", "vocab"])
    assert done["tokens"] == 3 + 4


@pytest.mark.slow
def test_pretraining_reads_raw_text(tmp_path, static_scope):
    (tmp_path / "train").mkdir()
    raw = "我们是中国人\n我爱北京天安门\n在北京的中国人爱天安门\n"
    (tmp_path / "train" / "a.txt").write_text(raw * 20, encoding="utf-8")
    (tmp_path / "dev.txt").write_text("我们爱北京\n", encoding="utf-8")
    (tmp_path / "v.txt").write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    corpus = {"train": str(tmp_path / "train" / "*.txt"), "dev": str(tmp_path / "dev.txt"),
              "vocab": str(tmp_path / "v.txt")}
    metrics = train(tiny_config(corpus, tmp_path / "run", **{"data.segment": "vocab", "model.softmax": "full",
                                                              "train.max_steps": 30}))
    # 我们 爱 北京 and </S>: segmented (whitespace would give one unknown word and </S>).
    assert metrics["tokens"] == 4 and np.isfinite(metrics["ppl"])
