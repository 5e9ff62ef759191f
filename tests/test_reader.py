from pathlib import Path

import numpy as np
import pytest

from engine.errors import DataError
from reader.lm import BW_INPUT, BW_TARGET, FW_INPUT, FW_TARGET, LMStream, SentenceSource, StreamBatcher
from reader.prefetch import Prefetcher
from reader.shards import encode_shard, resolve_shards
from reader.vocab import Vocabulary


def write_vocab(path, tokens):
    path.write_text("".join(t + "\n" for t in tokens))
    return path


SPECIALS = ["<S>", "</S>", "<UNK>"]


@pytest.mark.parametrize("tokens, message", [
    (["<S>", "</S>", "a"], "missing special token(s) <UNK>"),
    (["a", "b"], "missing special token(s) <S>, </S>, <UNK>"),
    (SPECIALS + ["a", "b", "a"], ":6: duplicate entry 'a' (first on line 4)"),
    (SPECIALS + ["a", ""], ":5: empty line"),
    (SPECIALS + ["a b c"], ":4: expected one token"),
])
def test_bad_vocabularies(tmp_path, tokens, message):
    with pytest.raises(DataError) as err:
        Vocabulary.load(write_vocab(tmp_path / "v.txt", tokens))
    assert message in str(err.value) and "v.txt" in str(err.value)


def test_vocabulary_ids_and_unknown_words(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("<S>\n</S>\n<UNK>\nthe 10\ncat")  # counts allowed; no final newline
    vocab = Vocabulary.load(path)
    assert len(vocab) == 5 and (vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2)
    assert vocab.encode(["the", "dog", "cat"]).tolist() == [0, 3, 2, 4, 1]
    # What ELMo's feeds take: no boundary tokens (the biLM adds them); a vocabulary is a collection.
    assert vocab.ids(["the", "dog", "cat"]) == [3, 2, 4]
    assert list(vocab) == ["<S>", "</S>", "<UNK>", "the", "cat"] and "cat" in vocab and "dog" not in vocab


def test_bad_shards(tmp_path):
    vocab = Vocabulary(SPECIALS + ["a"])
    with pytest.raises(DataError, match="no training files match"):
        resolve_shards(str(tmp_path / "nothing*"), "training")
    (tmp_path / "s1.txt").write_text("a a\n   \n\na\n")  # blank lines are skipped and counted
    shard = encode_shard(str(tmp_path / "s1.txt"), vocab)
    assert len(shard) == 2 and shard.blank_lines == 2
    (tmp_path / "s2.txt").write_bytes(b"a a\na \xff\xfe a\n")
    with pytest.raises(DataError, match=r"s2.txt:2: not valid UTF-8"):
        encode_shard(str(tmp_path / "s2.txt"), vocab)


def _toy_files(tmp_path, sentences_per_shard=(5, 4, 6)):
    vocab_path = write_vocab(tmp_path / "v.txt", SPECIALS + [f"w{i}" for i in range(30)])
    files, k = [], 0
    for s, n in enumerate(sentences_per_shard):
        lines = []
        for _ in range(n):
            lines.append(" ".join(f"w{(k + j) % 30}" for j in range(1 + k % 7)))
            k += 1
        path = tmp_path / f"shard{s}.txt"
        path.write_text("\n".join(lines) + "\n")
        files.append(str(path))
    return files, str(vocab_path)


def _batches(stream, state=None, n=None):
    out = []
    for batch in stream(state):
        out.append(batch)
        if n is not None and len(out) == n:
            break
    return out


def test_windows_follow_the_bilm_tf_rules(tmp_path):
    files, vocab_path = _toy_files(tmp_path)
    vocab = Vocabulary.load(vocab_path)
    stream = LMStream(tuple(files), vocab_path, batch_size=2, num_steps=4)
    batches = _batches(stream)
    # Reassemble row 0's stream: inputs then the final target recover the sentences.
    for batch in batches:
        a = batch.arrays
        real = batch.mask > 0
        # Within a sentence, each target is the next input.
        inner = real[:, 1:] & (a[FW_TARGET][:, :-1] != vocab.eos_id)
        np.testing.assert_array_equal(a[FW_INPUT][:, 1:][inner], a[FW_TARGET][:, :-1][inner])
        assert not np.any(a[FW_INPUT][real] == vocab.eos_id), "</S> is never an input"
        assert not np.any(a[FW_TARGET][real] == vocab.bos_id), "<S> is never a target"
        assert not np.any(a[BW_INPUT][real] == vocab.bos_id)
        assert not np.any(a[BW_TARGET][real] == vocab.eos_id)
    # Every sentence of every shard is predicted exactly once in each direction.
    total = sum(len(encode_shard(f, vocab).ids) - len(encode_shard(f, vocab)) for f in files)
    assert sum(b.num_tokens for b in batches) == total


def _row_streams(batches, row):
    """Concatenates one row's real inputs over all batches, per direction."""
    fw, bw = [], []
    for batch in batches:
        real = batch.mask[row] > 0
        fw += batch.arrays[FW_INPUT][row][real].tolist()
        bw += batch.arrays[BW_INPUT][row][real].tolist()
    return fw, bw


def test_backward_stream_is_the_same_sentences_reversed_across_windows(tmp_path):
    files, vocab_path = _toy_files(tmp_path)
    batches = _batches(LMStream(tuple(files), vocab_path, batch_size=2, num_steps=3))
    for row in (0, 1):
        fw, bw = _row_streams(batches, row)
        # Inputs are each sentence without its last token: [<S>, w1 … wn]
        # forward, [</S>, wn … w1] backward, sentence after sentence, with
        # windows of 3 cutting through sentences.
        starts = [i for i, tok in enumerate(fw) if tok == 0] + [len(fw)]
        words = [fw[a + 1:b] for a, b in zip(starts, starts[1:])]
        assert len(words) > 3
        assert bw == [tok for w in words for tok in [1, *reversed(w)]]


def test_resuming_from_a_batch_state_continues_identically(tmp_path):
    files, vocab_path = _toy_files(tmp_path, (7, 5, 9, 4))
    stream = LMStream(tuple(files), vocab_path, batch_size=3, num_steps=5, shuffle=True, seed=4, loop=True)
    whole = _batches(stream, n=30)
    resumed = _batches(stream, whole[11].state, n=18)
    for a, b in zip(whole[12:], resumed):
        assert a.index == b.index
        for name in a.arrays:
            np.testing.assert_array_equal(a.arrays[name], b.arrays[name])


def test_shuffling_depends_on_seed_and_pass(tmp_path):
    files, vocab_path = _toy_files(tmp_path, (8, 8, 8))
    vocab = Vocabulary.load(vocab_path)

    def first_pass(seed, epoch):
        source = SentenceSource(files, vocab_path, shuffle=True, seed=seed, loop=True, position=(epoch, 0, 0))
        return [tuple(source.next()) for _ in range(24)]

    a, b, c = first_pass(1, 0), first_pass(1, 1), first_pass(2, 0)
    assert a == first_pass(1, 0) and a != b and a != c
    assert sorted(a) == sorted(b)  # the same sentences, another order
    assert len(vocab) == 33


def test_encoding_in_worker_processes_gives_the_same_batches(tmp_path):
    files, vocab_path = _toy_files(tmp_path)
    serial = _batches(LMStream(tuple(files), vocab_path, 2, 4, shuffle=True, seed=1, loop=True), n=12)
    pooled = _batches(LMStream(tuple(files), vocab_path, 2, 4, shuffle=True, seed=1, loop=True,
                               num_workers=2), n=12)
    for a, b in zip(serial, pooled):
        np.testing.assert_array_equal(a.arrays[FW_INPUT], b.arrays[FW_INPUT])


def test_batcher_restores_fewer_or_more_rows(tmp_path):
    files, vocab_path = _toy_files(tmp_path)

    def batcher(rows, state=None):
        position = tuple(state["position"]) if state else (0, 0, 0)
        source = SentenceSource(files, vocab_path, shuffle=False, seed=0, loop=True, position=position)
        return StreamBatcher(source, rows, 3, state)

    first = batcher(4)
    state = first.next_batch().state
    expected = first.next_batch()
    for rows in (2, 6):
        again = batcher(rows, state).next_batch()
        kept = min(rows, 4)
        # Rows that existed continue their sentences exactly; new rows start fresh ones.
        np.testing.assert_array_equal(again.arrays[FW_INPUT][:kept], expected.arrays[FW_INPUT][:kept])
        if rows > 4:
            assert np.all(again.arrays[FW_INPUT][4:, 0] == 0)  # each starts with <S>


def test_prefetcher_forwards_batches_and_errors(tmp_path):
    files, vocab_path = _toy_files(tmp_path)
    stream = LMStream(tuple(files), vocab_path, 2, 4)
    with Prefetcher(stream, None, capacity=2) as p:
        via_process = list(p)
    direct = _batches(stream)
    assert [b.index for b in via_process] == [b.index for b in direct]
    np.testing.assert_array_equal(via_process[-1].mask, direct[-1].mask)

    (tmp_path / "shard1.txt").write_text("w1 w2\n\nw3\n")
    with Prefetcher(stream, None, capacity=2) as p:
        notes = [note for batch in p for note in batch.notes]
    assert notes == [f"{tmp_path / 'shard1.txt'}: 1 blank line(s) skipped"]  # said once, by the batch that read it

    (tmp_path / "shard1.txt").write_bytes(b"w1 \xff\n")
    with pytest.raises(DataError, match=r"shard1.txt:1: not valid UTF-8"):
        with Prefetcher(stream, None, capacity=2) as p:
            list(p)


def _descendants(pid: int) -> set[int]:
    """Live descendants of `pid`, from /proc (Linux)."""
    import os

    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parent[int(entry)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - found
        found |= frontier
    return found


def test_closing_mid_stream_stops_every_reader_process(tmp_path):
    import os
    import time

    files, vocab_path = _toy_files(tmp_path, (50, 50, 50, 50))
    stream = LMStream(tuple(files), vocab_path, 2, 4, shuffle=True, loop=True, num_workers=2)
    before = _descendants(os.getpid())
    prefetcher = Prefetcher(stream, None, capacity=2)
    next(prefetcher)
    started = _descendants(os.getpid()) - before
    assert len(started) >= 3  # the reader and its two encoding workers (and maybe a resource tracker)
    prefetcher.close()
    deadline = time.time() + 10
    while (_descendants(os.getpid()) - before) & started and time.time() < deadline:
        time.sleep(0.1)
    assert not (_descendants(os.getpid()) - before) & started


ORPHAN = """
import sys, time
from reader.lm import LMStream
from reader.prefetch import Prefetcher

files, vocab = sys.argv[1].split(","), sys.argv[2]
# Batches bigger than a pipe buffer: what the queue holds cannot all sit in the pipe.
prefetcher = Prefetcher(LMStream(tuple(files), vocab, 64, 50, loop=True), None, capacity=8)
next(prefetcher)
print(prefetcher._process.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_a_reader_whose_trainer_was_killed_exits(tmp_path):
    # The trainer dies without closing its reader (SIGKILL, out of memory):
    # the orphaned reader must still exit, or it holds the trainer's output
    # pipes open and whoever waits on them (a launcher, a test) hangs.
    import os
    import signal
    import subprocess
    import sys
    import time

    files, vocab_path = _toy_files(tmp_path)
    root = Path(__file__).resolve().parents[1]
    trainer = subprocess.Popen([sys.executable, "-c", ORPHAN, ",".join(map(str, files)), str(vocab_path)],
                               cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, stdout=subprocess.PIPE,
                               text=True)
    reader_pid = int(trainer.stdout.readline())
    time.sleep(1.0)  # the queue fills while nobody reads
    trainer.send_signal(signal.SIGKILL)
    trainer.wait()
    deadline = time.time() + 20
    while os.path.exists(f"/proc/{reader_pid}") and _state(reader_pid) != "Z" and time.time() < deadline:
        time.sleep(0.1)
    alive = os.path.exists(f"/proc/{reader_pid}") and _state(reader_pid) != "Z"
    if alive:
        os.kill(reader_pid, signal.SIGKILL)
    assert not alive, "the orphaned reader process did not exit"


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_sorted_batches_cover_every_line_once_within_their_budgets(tmp_path):
    import random

    from reader.sentences import sorted_batches

    rng = random.Random(0)
    lines = [" ".join(["w"] * rng.randint(1, 30)) for _ in range(200)]
    (tmp_path / "s.txt").write_text("\n".join(lines) + "\n")
    batches = list(sorted_batches(tmp_path / "s.txt", max_tokens=64, max_sentences=5, window=37))
    seen = [i for indices, _ in batches for i in indices]
    assert sorted(seen) == list(range(200))
    for indices, sentences in batches:
        assert [lines[i].split() for i in indices] == sentences
        longest = max(map(len, sentences))
        assert len(sentences) <= 5 and (len(sentences) * (longest + 2) <= 64 or len(sentences) == 1)
        assert [len(s) for s in sentences] == sorted(len(s) for s in sentences)


def test_a_byte_order_mark_is_not_text(tmp_path):
    from reader.text_file import numbered_lines

    path = tmp_path / "windows.txt"
    path.write_bytes("\ufeffthe cat\r\nsees\r\n".encode())
    assert list(numbered_lines(path)) == [(1, "the cat"), (2, "sees")]
