"""Tests for reader.default_corpus and reader.stdlib_text (the corpus derived from CPython's docs)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from reader import default_corpus
from reader.default_corpus import DefaultCorpus, build_default_corpus
from reader.stdlib_text import extract_sentences, text_to_sentences, tokenize
from reader.vocab import SPECIAL_TOKENS

NUM_SHARDS = 3


def _lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), path
    return text[:-1].split("\n")


def _train_lines(corpus: DefaultCorpus) -> list[str]:
    shards = sorted((corpus.root / "train").iterdir())
    return [line for shard in shards for line in _lines(shard)]


def _dev_lines(corpus: DefaultCorpus) -> list[str]:
    return _lines(corpus.root / "dev" / "shard-00000.txt")


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Relative path -> (content, mtime_ns) of every file under root."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _contents(root: Path) -> dict[str, bytes]:
    return {name: content for name, (content, _) in _snapshot(root).items()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> DefaultCorpus:
    # One full build shared by the read-only checks; extraction is cached,
    # so the other tests' builds only pay for writing.
    root = tmp_path_factory.mktemp("built") / "corpus"
    return build_default_corpus(root, num_shards=NUM_SHARDS)


# ---------------------------------------------------------------- text level


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("Don't call __init__() twice, it's 3.14!") == [
        "don't", "call", "__init__", "(", ")", "twice", ",", "it's", "3.14", "!",
    ]
    assert tokenize("The \u201cfor\u201d statement\u2019s body.") == [
        "the", '"', "for", '"', "statement's", "body", ".",
    ]


def test_text_to_sentences_keeps_prose_and_drops_code():
    text = (
        "The first sentence is here. The second one\n"
        "is wrapped over two lines!\n"
        "\n"
        ">>> x = compute(1, 2)\n"
        "3\n"
        "\n"
        "Consider this loop::\n"
        "\n"
        "    for item in items:\n"
        "        print(item)\n"
        "\n"
        "Heading without a full stop\n"
        "===========================\n"
        "\n"
        "Is this the last one? Yes.\n"
    )
    assert [" ".join(s) for s in text_to_sentences(text)] == [
        "the first sentence is here .",
        "the second one is wrapped over two lines !",
        "consider this loop :",
        "is this the last one ?",
    ]


def test_text_to_sentences_respects_length_limits():
    # Punctuation counts: "Go." is two tokens, the final "." makes 61.
    assert text_to_sentences("Go.") == []
    assert text_to_sentences("Go on.") == [("go", "on", ".")]
    assert text_to_sentences(" ".join(["word"] * 60) + ".") == []
    assert len(text_to_sentences(" ".join(["word"] * 59) + ".")[0]) == 60


# -------------------------------------------------------------- corpus level


@pytest.mark.slow
def test_layout(corpus):
    root = corpus.root
    assert sorted(p.name for p in (root / "train").iterdir()) == [
        f"shard-{i:05d}.txt" for i in range(NUM_SHARDS)
    ]
    assert (root / "dev" / "shard-00000.txt").is_file()
    assert corpus.vocab == root / "vocab.txt" and corpus.vocab.is_file()
    assert (root / "corpus.json").is_file()
    assert len(list(root.glob("train/shard-*.txt"))) == NUM_SHARDS
    assert Path(corpus.train_glob).parent == root / "train"
    assert Path(corpus.dev_glob).parent == root / "dev"


@pytest.mark.slow
def test_counts_match_files(corpus):
    train, dev = _train_lines(corpus), _dev_lines(corpus)
    assert corpus.num_train_sentences == len(train)
    assert corpus.num_dev_sentences == len(dev)
    assert corpus.num_train_tokens == sum(len(line.split(" ")) for line in train)
    assert corpus.num_dev_tokens == sum(len(line.split(" ")) for line in dev)
    assert corpus.vocab_size == len(_lines(corpus.vocab))
    # Large enough to be worth pretraining on, on any supported Python.
    assert corpus.num_train_tokens > 100_000


@pytest.mark.slow
def test_train_dev_ratio_is_five_to_one(corpus):
    total = corpus.num_train_sentences + corpus.num_dev_sentences
    assert corpus.num_dev_sentences == total // 6


@pytest.mark.slow
def test_lines_are_well_formed_sentences(corpus):
    for line in _train_lines(corpus) + _dev_lines(corpus):
        tokens = line.split(" ")
        assert 3 <= len(tokens) <= 60, line
        assert all(tokens), f"double or edge space in {line!r}"
        assert line == line.lower()


@pytest.mark.slow
def test_no_duplicate_sentences(corpus):
    lines = _train_lines(corpus) + _dev_lines(corpus)
    assert len(set(lines)) == len(lines)


@pytest.mark.slow
def test_vocab_specials_then_descending_train_count(corpus):
    vocab = _lines(corpus.vocab)
    assert vocab[:3] == list(SPECIAL_TOKENS) == ["<S>", "</S>", "<UNK>"]
    assert len(set(vocab)) == len(vocab)
    counts = Counter(t for line in _train_lines(corpus) for t in line.split(" "))
    frequent = [token for token, n in counts.items() if n >= 3]
    expected = sorted(frequent, key=lambda token: (-counts[token], token))
    assert vocab[3:] == expected


@pytest.mark.slow
def test_manifest_records_params_and_counts(corpus):
    manifest = json.loads((corpus.root / "corpus.json").read_text(encoding="utf-8"))
    assert manifest["params"]["num_shards"] == NUM_SHARDS
    assert manifest["params"]["min_count"] == 3
    assert manifest["counts"]["vocab_size"] == corpus.vocab_size


@pytest.mark.slow
def test_build_is_deterministic(corpus, tmp_path):
    # Re-extract from scratch rather than reuse the cached sentences.
    extract_sentences.cache_clear()
    again = build_default_corpus(tmp_path / "again", num_shards=NUM_SHARDS)
    assert _contents(again.root) == _contents(corpus.root)


@pytest.mark.slow
def test_second_call_does_not_rebuild(corpus):
    before = _snapshot(corpus.root)
    again = build_default_corpus(corpus.root, num_shards=NUM_SHARDS)
    assert again == corpus
    assert _snapshot(corpus.root) == before


@pytest.mark.slow
def test_changed_params_rebuild(tmp_path):
    root = tmp_path / "corpus"
    loose = build_default_corpus(root, min_count=2, num_shards=2)
    strict = build_default_corpus(root, min_count=5, num_shards=2)
    assert strict.vocab_size < loose.vocab_size
    assert len(_lines(root / "vocab.txt")) == strict.vocab_size


@pytest.mark.slow
def test_max_tokens_caps_train_and_keeps_ratio(tmp_path):
    small = build_default_corpus(tmp_path / "small", num_shards=2, max_tokens=20_000)
    assert 19_000 <= small.num_train_tokens <= 20_500
    total = small.num_train_sentences + small.num_dev_sentences
    assert small.num_dev_sentences == total // 6


@pytest.mark.slow
def test_leftover_temp_dir_is_not_taken_for_a_build(corpus, tmp_path):
    # What a killed build leaves behind: a complete-looking hidden sibling.
    shutil.copytree(corpus.root, tmp_path / ".corpus.partial-123-deadbeef")
    root = tmp_path / "corpus"
    built = build_default_corpus(root, num_shards=NUM_SHARDS)
    assert built.root == root
    assert _lines(root / "vocab.txt") == _lines(corpus.vocab)


@pytest.mark.slow
@pytest.mark.parametrize(
    "damage", ["remove_manifest", "remove_shard", "garble_manifest"]
)
def test_incomplete_build_is_rebuilt(corpus, tmp_path, damage):
    root = tmp_path / "corpus"
    shutil.copytree(corpus.root, root)
    if damage == "remove_manifest":
        (root / "corpus.json").unlink()
    elif damage == "remove_shard":
        (root / "train" / "shard-00001.txt").unlink()
    else:
        (root / "corpus.json").write_text("{", encoding="utf-8")
    rebuilt = build_default_corpus(root, num_shards=NUM_SHARDS)
    assert rebuilt.vocab_size == corpus.vocab_size
    assert rebuilt.num_train_tokens == corpus.num_train_tokens
    assert _contents(root) == _contents(corpus.root)
    assert [p.name for p in tmp_path.iterdir()] == ["corpus"], "staging left behind"


@pytest.mark.slow
def test_failed_build_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(default_corpus, "_vocabulary", fail)
    with pytest.raises(RuntimeError):
        build_default_corpus(tmp_path / "corpus")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_replace_a_foreign_directory(tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(FileExistsError):
        build_default_corpus(root)
    assert (root / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_rejects_bad_params(tmp_path):
    for kwargs in ({"min_count": 0}, {"num_shards": 0}, {"max_tokens": 0}):
        with pytest.raises(ValueError):
            build_default_corpus(tmp_path / "corpus", **kwargs)


@pytest.mark.slow
def test_cli_prints_one_line_summary(tmp_path, capsys):
    assert default_corpus.main([str(tmp_path / "cli"), "--num-shards", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "vocab" in out
    assert len(list((tmp_path / "cli" / "train").iterdir())) == 2
