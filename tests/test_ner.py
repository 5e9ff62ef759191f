"""CoNLL-2003 NER by span classification (and by token classification): reading, context, candidates,
decoding, the metric, the job."""

from __future__ import annotations

import random

import numpy as np
import pytest

pytest.importorskip("transformers")

from engine.config import load_config  # noqa: E402
from engine.errors import DataError  # noqa: E402
from engine.trainer import Trainer  # noqa: E402
from luke_static.ner.data import (  # noqa: E402
    Encoded,
    Feature,
    Sentence,
    SpanSettings,
    decode,
    encode,
    read_conll,
    span_scores,
    word_pieces,
)
from luke_static.ner.job import NerRunConfig, NerTraining  # noqa: E402
from luke_static.ner.tokens import encode_tagged, tag_labels, tagged_entities, word_tags  # noqa: E402
from luke_static.tokenizer import LukeTokenizer  # noqa: E402
from reader.chunks import chunks, iob2_tags  # noqa: E402

from helpers.luke import NAMES, conll, write_luke_model, write_tokenizer  # noqa: E402
from helpers.programs import assert_backends_agree, predict_records  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return LukeTokenizer.from_dir(write_tokenizer(tmp_path_factory.mktemp("tok")), add_prefix_space=True)


def test_reading_keeps_documents_and_reads_iob1_and_iob2_alike(tmp_path):
    (tmp_path / "a.txt").write_text(conll(7, seed=1))
    (tmp_path / "b.txt").write_text(conll(7, seed=1, iob1=True))
    a, b = read_conll(tmp_path / "a.txt"), read_conll(tmp_path / "b.txt")
    assert [s.entities for s in a] == [s.entities for s in b] and len(a) == 7
    assert [s.document for s in a] == [0, 0, 0, 1, 1, 1, 2]
    assert all(t in NAMES for s in a for t, _, _ in s.entities)


@pytest.mark.parametrize("lines, message", [
    (["EU NNP B-NP B-ORG", "rejects VBZ B-VP"], r"x.txt:2: 3 column\(s\); the file's token lines have 4"),
    (["EU"], r"x.txt:1: 1 column\(s\)"),
    (["EU NNP B-NP ORG-B"], r"x.txt:1: tag 'ORG-B' is not O, B-TYPE or I-TYPE"),
])
def test_bad_lines_are_named(tmp_path, lines, message):
    (tmp_path / "x.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=message):
        read_conll(tmp_path / "x.txt")


def test_candidates_are_every_short_enough_span_with_its_subwords(tokenizer):
    sentence = Sentence("Ünïcödé wörds lives in Los Angeles".split(), {("LOC", 4, 6)})
    settings = SpanSettings(max_seq_length=64, max_entity_length=7, max_mention_length=5)
    encoded = encode([sentence], tokenizer, settings, ["O", "LOC"])
    pieces = [word_pieces(tokenizer, w) for w in sentence.words]
    first = np.cumsum([0] + [len(p) for p in pieces]) + 1
    brute = [(i, j) for i in range(len(pieces)) for j in range(i + 1, len(pieces) + 1)
             if first[j] - first[i] <= settings.max_mention_length]
    spans = [s for f in encoded.features for s in f.spans]
    assert spans == brute
    assert all(len(f.spans) <= 7 for f in encoded.features) and len(encoded.features) == -(-len(brute) // 7)
    sizes = {len(f.spans) for f in encoded.features}
    assert max(sizes) - min(sizes) <= 1  # dealt into equal chunks
    labelled = {s: label for f in encoded.features for s, label in zip(f.spans, f.labels)}
    assert labelled[(4, 6)] == 1 and sum(labelled.values()) == 1
    feature = encoded.features[0]
    for (i, j), (a, b) in zip(feature.spans, feature.token_spans):
        assert feature.input_ids[a:b] == [t for p in pieces[i:j] for t in p]


def test_context_fills_the_room_from_the_shorter_side_first(tokenizer):
    words = ["Beyoncé"] * 40  # one subword each
    document = [Sentence(words[:12], set()), Sentence(words[:4], set()), Sentence(words[:8], set())]
    assert all(len(word_pieces(tokenizer, w)) == 1 for w in words)
    settings = SpanSettings(max_seq_length=20, max_entity_length=500, max_mention_length=2)
    encoded = encode(document, tokenizer, settings, ["O"])
    middle = next(f for f in encoded.features if f.piece == 1)
    # room 18 - 4 = 14: the right side (8) is shorter than the left (12), so it gives min(8, 14 // 2) = 7
    # and the left takes the other 7.
    assert len(middle.input_ids) == 20 and middle.token_spans[0][0] == 1 + 7


def test_long_sentences_are_cut_and_predictions_come_back_whole(tokenizer):
    sentence = Sentence(["Beyoncé", "lives", "in", "Los", "Angeles", "."] * 4, {("PER", 0, 1), ("LOC", 21, 23)})
    settings = SpanSettings(max_seq_length=12, max_entity_length=50, max_mention_length=4)
    encoded = encode([sentence], tokenizer, settings, ["O", "PER", "LOC"])
    assert encoded.cut >= 2 and len(encoded.pieces) == encoded.cut + 1
    assert [k for k, _ in encoded.pieces] == [0] * len(encoded.pieces)
    last = encoded.pieces[-1][1]  # the first word of the last piece
    logits = np.zeros((len(encoded.features), 50, 3), np.float32)
    for f, feature in enumerate(encoded.features):
        _, offset = encoded.pieces[feature.piece]
        for k, (a, b) in enumerate(feature.spans):
            logits[f, k, {(0, 1): 1, (last, last + 1): 2}.get((a + offset, b + offset), 0)] = 5
    assert decode(encoded, logits, ["O", "PER", "LOC"]) == [{("PER", 0, 1), ("LOC", last, last + 1)}]


def greedy_reference(candidates: list[tuple[float, int, int, str]]) -> set:
    """Repeatedly take the best remaining candidate and drop every candidate it overlaps."""
    left, chosen = list(candidates), set()
    while left:
        best = max(left, key=lambda c: c[0])
        chosen.add((best[3], best[1], best[2]))
        left = [c for c in left if c[2] <= best[1] or c[1] >= best[2]]
    return chosen


@pytest.mark.parametrize("seed", range(5))
def test_greedy_decoding_equals_a_reference(seed):
    rng = np.random.default_rng(seed)
    n, types = 9, ["O", "A", "B"]
    spans = [(i, j) for i in range(n) for j in range(i + 1, min(n, i + 4) + 1)]
    logits = rng.normal(size=(2, 20, 3)).astype(np.float32)
    features = [Feature(0, [], spans[:20], [], []), Feature(0, [], spans[20:], [], [])]
    encoded = Encoded([Sentence(["w"] * n)], [(0, 0)], features)
    got = decode(encoded, logits, types)[0]
    candidates = []
    for f, feature in enumerate(features):
        for k, (a, b) in enumerate(feature.spans):
            label = int(np.argmax(logits[f, k]))
            if label:
                candidates.append((float(logits[f, k, label]), a, b, types[label]))
    assert got == greedy_reference(candidates) and got


@pytest.mark.parametrize("seed", range(4))
def test_span_scores_equal_seqeval(seed):
    from seqeval.metrics import f1_score, precision_score, recall_score

    rng = random.Random(seed)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"]  # IOB1 and IOB2 mixed, stray I- tags included
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(40)]
    predicted = [[rng.choice(tags) if rng.random() < 0.4 else t for t in sentence] for sentence in gold]
    sentences = [Sentence(["w"] * len(g), chunks(g)) for g in gold]
    ours = span_scores([chunks(p) for p in predicted], sentences)
    assert ours["precision"] == pytest.approx(precision_score(gold, predicted))
    assert ours["recall"] == pytest.approx(recall_score(gold, predicted))
    assert ours["f1"] == pytest.approx(f1_score(gold, predicted))
    # Decoded spans go out as IOB2 tags: seqeval reads them back as the same spans.
    as_tags = [iob2_tags(chunks(p), len(p)) for p in predicted]
    assert f1_score(gold, as_tags) == pytest.approx(ours["f1"])


@pytest.mark.slow
def test_a_tiny_model_learns_entities_and_the_export_agrees(tmp_path, static_scope):
    from luke_static import pipeline

    luke = write_luke_model(tmp_path / "luke")
    (tmp_path / "train.txt").write_text(conll(60, seed=3))
    (tmp_path / "dev.txt").write_text(conll(18, seed=4, iob1=True))
    items = {"data.train": tmp_path / "train.txt", "data.dev": tmp_path / "dev.txt", "data.test": tmp_path / "dev.txt",
             "data.max_seq_length": 40, "data.max_entity_length": 24, "data.max_mention_length": 6,
             "model.luke": luke, "train.output_dir": tmp_path / "run", "train.batch_size": 8, "train.max_steps": 150,
             "train.eval_every": 50, "train.log_every": 50, "train.save_every": 0, "optim.learning_rate": 3e-3,
             "optim.accumulate_steps": 1, "optim.warmup_ratio": 0.0, "train.export_onnx": True}
    cfg = load_config(NerRunConfig, "configs/ner.yaml", [f"{k}={v}" for k, v in items.items()])
    job = NerTraining(cfg)
    metrics = Trainer(job, cfg.train, cfg.optim, cfg.runtime).fit()
    assert metrics["best_f1"] > 0.9, metrics
    assert set(metrics["per_type"]) == {"PER", "LOC", "ORG"}
    sentences = read_conll(tmp_path / "dev.txt")
    raw = tmp_path / "raw.txt"
    raw.write_text("\n".join(" ".join(s.words) + ("\n" if s.document != n.document else "")
                             for s, n in zip(sentences, sentences[1:] + sentences[-1:])) + "\n")
    export = tmp_path / "run" / "inference"
    records = predict_records(export, raw, tmp_path, "--backend", "paddle")
    tagged = [r["tags"] for r in records]
    import json

    import paddle

    logits = job.decode(paddle.static.Executor(paddle.CPUPlace()), job.splits["dev"])["logits"]
    assert [chunks(t) for t in tagged] == decode(job.encoded["dev"], logits, job.types)  # the same spans
    test = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert span_scores([chunks(t) for t in tagged], sentences)["f1"] == pytest.approx(test["f1"])
    assert len(records) == len(sentences) and records[0]["text"] == " ".join(sentences[0].words)
    for record in records:  # every entity's offsets point at its text, its label in the tags
        for entity in record["entities"]:
            assert record["text"][entity["start"]:entity["end"]] == entity["text"] and 0 < entity["score"] <= 1
    assert_backends_agree(export / job.inference_prefix, job.splits["dev"])
    assert [r["tags"] for r in predict_records(export, raw, tmp_path, "--backend", "onnxruntime")] == tagged
    # From Python: a document's sentences together give the same entities.
    ner = pipeline("ner", export)
    first_document = [" ".join(s.words) for s in sentences if s.document == sentences[0].document]
    found, want = ner(first_document), [r["entities"] for r in records[:len(first_document)]]
    scores = lambda entities: [e.pop("score") for es in entities for e in es]  # noqa: E731
    # other batches pad to other lengths: the scores' last digit may move
    assert scores(found) == pytest.approx(scores(want), abs=2e-6) and found == want


def test_the_token_head_tags_each_words_first_subword(tokenizer):
    sentence = Sentence("Ana Ivanovic won at Wimbledon".split(), {("PER", 0, 2), ("LOC", 4, 5)})
    labels = tag_labels(["O", "LOC", "PER"])
    assert labels == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    rows = encode_tagged([sentence], tokenizer, 64, labels)
    (ids,), (targets,), (first,) = rows.input_ids, rows.labels, rows.first
    assert ids[0] == tokenizer.cls_id and ids[-1] == tokenizer.sep_id and len(targets) == len(ids)
    assert [labels[targets[i]] for i in first] == ["B-PER", "I-PER", "O", "O", "B-LOC"]
    assert sum(t != -100 for t in targets) == 5  # later subwords and special tokens take no part
    # A sentence longer than the model takes: pieces whose tags come back whole.
    short = encode_tagged([sentence], tokenizer, len(ids) - 3, labels)
    assert len(short.input_ids) == 2 and short.cut == 1 and max(map(len, short.input_ids)) <= len(ids) - 3
    logits = np.full((2, len(ids), len(labels)), -5.0)
    for row, (offset, firsts) in enumerate(zip([p[1] for p in short.pieces], short.first)):
        for i, position in enumerate(firsts):
            logits[row, position, labels.index(["B-PER", "I-PER", "O", "O", "B-LOC"][offset + i])] = 5.0
    (tags,) = word_tags(short, logits, labels)
    assert set(tagged_entities(tags)) == sentence.entities


@pytest.mark.slow
def test_the_two_heads_learn_the_same_entities(tmp_path, static_scope):
    """HF's token classification beside LUKE's span classification, on the same toy data and steps."""
    from luke_static import pipeline

    luke = write_luke_model(tmp_path / "luke")
    (tmp_path / "train.txt").write_text(conll(60, seed=3))
    (tmp_path / "dev.txt").write_text(conll(18, seed=4, iob1=True))
    f1 = {}
    for head in ("span", "token"):
        items = {"data.train": tmp_path / "train.txt", "data.dev": tmp_path / "dev.txt",
                 "data.test": tmp_path / "dev.txt", "data.max_seq_length": 40, "data.max_entity_length": 24,
                 "data.max_mention_length": 6, "model.luke": luke, "model.head": head,
                 "train.output_dir": tmp_path / head, "train.batch_size": 8, "train.max_steps": 150,
                 "train.eval_every": 50, "train.log_every": 50, "train.save_every": 0, "optim.learning_rate": 3e-3,
                 "optim.warmup_ratio": 0.0}
        cfg = load_config(NerRunConfig, "configs/ner.yaml", [f"{k}={v}" for k, v in items.items()])
        job = NerTraining(cfg)
        f1[head] = Trainer(job, cfg.train, cfg.optim, cfg.runtime).fit()["best_f1"]
    print(f"toy CoNLL dev F1 after 150 steps: span head {f1['span']:.4f}, token head {f1['token']:.4f}")
    assert f1["token"] > 0.8 and f1["span"] > 0.9, f1
    export = tmp_path / "token" / "inference"
    assert (export / "token_classification.json").is_file()
    sentences = read_conll(tmp_path / "dev.txt")
    raw = tmp_path / "raw.txt"
    raw.write_text("\n".join(" ".join(s.words) for s in sentences) + "\n")
    records = predict_records(export, raw, tmp_path)
    import paddle

    logits = job.decode(paddle.static.Executor(paddle.CPUPlace()), job.splits["dev"])["logits"]
    expected = [set(tagged_entities(tags)) for tags in word_tags(job.encoded["dev"], logits, job.labels)]
    assert [chunks(r["tags"]) for r in records] == expected
    found = pipeline("token_classification", export)(" ".join(sentences[0].words))
    assert found == records[0]["entities"]
