import pytest

from reader.chunks import ChunkCounter, chunks, split_tag


@pytest.mark.parametrize("tag, parsed", [
    ("LOC-B", ("B", "LOC")), ("LOC-I", ("I", "LOC")), ("B-PER", ("B", "PER")), ("I-PER", ("I", "PER")),
    ("O", ("O", "")), ("v", ("B", "v")), ("a-b-B", ("B", "a-b")),
])
def test_tag_spellings(tag, parsed):
    assert split_tag(tag) == parsed


def test_chunks_follow_conlleval():
    tags = ["NP-B", "NP-I", "VP-B", "NP-I", "O", "B-PP", "I-PP", "v"]
    assert chunks(tags) == {("NP", 0, 2), ("VP", 2, 3), ("NP", 3, 4), ("PP", 5, 7), ("v", 7, 8)}


def test_micro_precision_recall_f1():
    counter = ChunkCounter()
    counter.add(["NP-B", "NP-I", "VP-B"], ["NP-B", "NP-I", "VP-B"])
    counter.add(["NP-B", "O", "VP-B"], ["NP-B", "NP-I", "O"])
    assert (counter.predicted, counter.gold, counter.correct) == (4, 3, 2)
    scores = counter.scores()
    assert scores["precision"] == 0.5 and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert ChunkCounter().scores()["f1"] == 0.0
