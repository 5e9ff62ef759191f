"""Language-model batches: B continuous sentence streams cut into windows of T.

The batching of bilm-tf and the fluid ELMo: each of the B rows of a batch is
its own stream of consecutive sentences, so a sentence may continue in the
same row of the next batch (which is why the LSTM state is carried from batch
to batch). For a sentence s = [<S>, w1 … wn, </S>], inputs are s[:k] and
targets s[1:k+1]; the last token of a window starts the next one, so `</S>` is
never an input and `<S>` never a target.

Unlike the fluid release, the backward stream is the same sentences in the
same rows, each reversed ([</S>, wn … w1, <S>]), so both directions see the
same data; and evaluation reads every dev sentence exactly once, padding the
tail with a zero mask instead of dropping it.

The stream's position (data pass, shard, sentence, and each row's unfinished
sentence) travels with every batch, so a checkpoint can resume it exactly.
For character models (a `reader.chars.Spelling`) each batch also carries both
directions' inputs spelled out, [B,T,C] character ids of the words as written
(an out-of-vocabulary word is spelled, not `<UNK>`).
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from engine.errors import DataError
from reader.chars import Spelling
from reader.segment import Segmenter
from reader.shards import EncodedShard, encode_shard
from reader.vocab import Vocabulary

FW_INPUT, FW_TARGET = "token_ids", "next_token_ids"
BW_INPUT, BW_TARGET = "token_ids_reverse", "next_token_ids_reverse"
FW_CHARS, BW_CHARS = "token_char_ids", "token_char_ids_reverse"
# The sampled softmax's negatives for a batch, added by `reader.sampling.NegativeSampling`.
NEG_IDS, NUM_TRIES = "neg_ids", "num_tries"


@dataclass
class LMBatch:
    """One batch: named [B,T] int64 arrays, a [B,T] mask, and the stream state after it."""

    index: int  # 0-based position of this batch in the stream
    arrays: dict[str, np.ndarray]
    mask: np.ndarray  # float32, 1 = real token
    state: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # for the log: what reading skipped (blank lines)

    @property
    def num_tokens(self) -> int:
        return int(self.mask.sum())


class SentenceSource:
    """Sentences of a list of shards, pass after pass (or once), optionally shuffled.

    Shard order and sentence order within a shard are pure functions of
    (seed, pass, shard), so a position (pass, shard, sentence) is all it takes
    to resume. Upcoming shards are encoded ahead in worker processes.
    """

    def __init__(self, files: list[str], vocab_path: str, *, shuffle: bool, seed: int,
                 loop: bool, num_workers: int = 0, position: tuple[int, int, int] = (0, 0, 0),
                 spelling: Spelling | None = None, segment: str = "none"):
        self.files = list(files)
        self.vocab_path = vocab_path
        self.spelling = spelling
        self.shuffle = shuffle
        self.seed = seed
        self.loop = loop
        self.epoch, self.shard_pos, self.sentence_pos = position
        self._vocab = None
        self.segment = segment
        self._split = None  # this process's `Segmenter`, made with the vocabulary
        self._pool = _encoding_pool(vocab_path, num_workers, segment)
        self._lookahead = max(1, num_workers)
        self._pending: deque = deque()
        self._shard: EncodedShard | None = None
        self._order: np.ndarray | None = None
        self._noted: set[str] = set()
        self.notes: list[str] = []  # shards' blank lines, each shard once; `StreamBatcher` hands them on

    @property
    def position(self) -> tuple[int, int, int]:
        """(pass, index of the shard within the pass, next sentence within the shard)."""
        return self.epoch, self.shard_pos, self.sentence_pos

    def next(self) -> np.ndarray | None:
        """The next sentence (see `EncodedShard.sentence`), or None at the end of a single pass."""
        while True:
            if self._shard is None and not self._open_shard():
                return None
            if self.sentence_pos < len(self._shard):
                k = self._order[self.sentence_pos] if self._order is not None else self.sentence_pos
                self.sentence_pos += 1
                return self._shard.sentence(k)
            self._shard = None
            self.shard_pos += 1
            self.sentence_pos = 0
            if self.shard_pos == len(self.files):
                if not self.loop:
                    return None
                self.epoch += 1
                self.shard_pos = 0

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None

    def _open_shard(self) -> bool:
        if self.shard_pos >= len(self.files):
            return False
        key = (self.epoch, self.shard_pos)
        self._shard = self._load(key)
        if self._shard.blank_lines and self._shard.path not in self._noted:
            self._noted.add(self._shard.path)
            self.notes.append(f"{self._shard.path}: {self._shard.blank_lines} blank line(s) skipped")
        self._order = None
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch, self._file_index(key)])
            self._order = rng.permutation(len(self._shard))
        return True

    def _file_index(self, key: tuple[int, int]) -> int:
        epoch, pos = key
        if not self.shuffle:
            return pos
        return int(np.random.default_rng([self.seed, epoch]).permutation(len(self.files))[pos])

    def _upcoming(self, key: tuple[int, int], n: int) -> list[tuple[int, int]]:
        keys, (epoch, pos) = [], key
        while len(keys) < n:
            keys.append((epoch, pos))
            pos += 1
            if pos == len(self.files):
                if not self.loop:
                    break
                epoch, pos = epoch + 1, 0
        return keys

    def _load(self, key: tuple[int, int]) -> EncodedShard:
        if self._pool is None:
            if self._vocab is None:
                self._vocab = Vocabulary.load(self.vocab_path)
                self._split = Segmenter(self.segment, self._vocab.tokens)
            return encode_shard(self.files[self._file_index(key)], self._vocab, self.spelling, self._split)
        while self._pending and self._pending[0][0] != key:
            self._pending.popleft()
        queued = {k for k, _ in self._pending}
        for k in self._upcoming(key, self._lookahead + 1):
            if k not in queued:
                path = self.files[self._file_index(k)]
                self._pending.append((k, self._pool.apply_async(_encode_in_worker, (path, self.spelling))))
        return self._await(self._pending.popleft()[1], self.files[self._file_index(key)])

    def _await(self, result, path: str) -> EncodedShard:
        # A worker killed mid-task (out of memory, say) is replaced by the Pool
        # but its task never completes: notice that instead of waiting forever.
        workers = {p.pid for p in multiprocessing.active_children()}
        while True:
            try:
                return result.get(timeout=1.0)
            except multiprocessing.TimeoutError:
                if not workers <= {p.pid for p in multiprocessing.active_children()}:
                    raise RuntimeError(f"a shard-encoding worker died while encoding {path} "
                                       "(out of memory?)") from None


class StreamBatcher:
    """Cuts B row streams of sentences into [B,T] windows for both directions."""

    def __init__(self, source: SentenceSource, batch_size: int, num_steps: int, state: dict | None = None):
        self.source = source
        self.max_chars = source.spelling.max_chars if source.spelling else 0
        self.batch_size = batch_size
        self.num_steps = num_steps
        self.index = 0
        # Per row: [sentence ids, offset of the next input token] or None.
        self._rows: list[list | None] = [None] * batch_size
        if state:
            self._restore(state)

    def next_batch(self) -> LMBatch | None:
        B, T = self.batch_size, self.num_steps
        arrays = {name: np.zeros((B, T), np.int64) for name in (FW_INPUT, FW_TARGET, BW_INPUT, BW_TARGET)}
        if self.max_chars:
            arrays.update({name: np.zeros((B, T, self.max_chars), np.int64) for name in (FW_CHARS, BW_CHARS)})
        mask = np.zeros((B, T), np.float32)
        for i in range(B):
            self._fill_row(i, arrays, mask)
        if not mask.any():
            return None
        batch = LMBatch(self.index, arrays, mask, notes=self.source.notes)
        self.source.notes = []
        self.index += 1
        batch.state = self.state()
        return batch

    def state(self) -> dict:
        """JSON-serialisable position: resuming from it continues with the next batch."""
        return {
            "batches": self.index,
            "position": list(self.source.position),
            "rows": [None if r is None else [r[0].tolist(), r[1]] for r in self._rows],
        }

    def _fill_row(self, i: int, arrays: dict, mask: np.ndarray) -> None:
        pos = 0
        while pos < self.num_steps:
            row = self._rows[i]
            if row is None or len(row[0]) - row[1] <= 1:
                sentence = self.source.next()
                if sentence is None:
                    self._rows[i] = None
                    return
                row = self._rows[i] = [sentence, 0]
            sentence, off = row
            k = min(len(sentence) - off - 1, self.num_steps - pos)
            ids = sentence if sentence.ndim == 1 else sentence[:, 0]
            reverse = ids[::-1]
            arrays[FW_INPUT][i, pos : pos + k] = ids[off : off + k]
            arrays[FW_TARGET][i, pos : pos + k] = ids[off + 1 : off + k + 1]
            arrays[BW_INPUT][i, pos : pos + k] = reverse[off : off + k]
            arrays[BW_TARGET][i, pos : pos + k] = reverse[off + 1 : off + k + 1]
            if self.max_chars:
                spelled = sentence[:, 1:]
                arrays[FW_CHARS][i, pos : pos + k] = spelled[off : off + k]
                arrays[BW_CHARS][i, pos : pos + k] = spelled[::-1][off : off + k]
            mask[i, pos : pos + k] = 1.0
            row[1] = off + k
            pos += k

    def _restore(self, state: dict) -> None:
        try:
            self.index = int(state["batches"])
            rows = state["rows"][: self.batch_size]
            # A different number of rows (resuming with another number of ranks):
            # extra rows start on fresh sentences.
            for i, row in enumerate(rows):
                self._rows[i] = None if row is None else [np.asarray(row[0], np.int32), int(row[1])]
                if row is not None and self._rows[i][0].ndim != (2 if self.max_chars else 1):
                    raise DataError("the checkpoint's reader state was written for a "
                                    f"{'word' if self.max_chars else 'character'} model")
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DataError(f"malformed reader state in the checkpoint ({exc!r})") from None


@dataclass(frozen=True)
class LMStream:
    """Picklable recipe for an LM batch stream (run inside a reader worker process)."""

    files: tuple[str, ...]
    vocab_path: str
    batch_size: int
    num_steps: int
    shuffle: bool = False
    seed: int = 0
    loop: bool = False
    num_workers: int = 0
    transforms: tuple = ()  # callables LMBatch → LMBatch, applied in the worker
    spelling: Spelling | None = None  # character models: also spell the inputs
    segment: str = "none"  # how a line becomes words: `reader.segment.MODES`

    def __call__(self, state: dict | None = None):
        """Yields the stream's batches, from `state` (a batch's `.state`) on if given."""
        position = tuple(state.get("position", (0, 0, 0))) if state else (0, 0, 0)
        source = SentenceSource(list(self.files), self.vocab_path, shuffle=self.shuffle, seed=self.seed,
                                loop=self.loop, num_workers=self.num_workers, position=position,
                                spelling=self.spelling, segment=self.segment)
        try:
            batcher = StreamBatcher(source, self.batch_size, self.num_steps, state)
            while (batch := batcher.next_batch()) is not None:
                for transform in self.transforms:
                    batch = transform(batch)
                yield batch
        finally:
            source.close()


_worker_vocab: Vocabulary | None = None


def _encoding_pool(vocab_path: str, num_workers: int, segment: str = "none"):
    if num_workers <= 0:
        return None
    # A Pool (not a ProcessPoolExecutor): `terminate` stops workers mid-shard
    # when the trainer closes the stream.
    return multiprocessing.get_context("spawn").Pool(num_workers, initializer=_init_worker,
                                                     initargs=(vocab_path, segment))


_worker_split = str.split


def _init_worker(vocab_path: str, segment: str) -> None:
    global _worker_vocab, _worker_split
    _worker_vocab = Vocabulary.load(vocab_path)
    _worker_split = Segmenter(segment, _worker_vocab.tokens)


def _encode_in_worker(path: str, spelling: Spelling | None) -> EncodedShard:
    return encode_shard(path, _worker_vocab, spelling, _worker_split)


@dataclass(frozen=True)
class RankRows:
    """Batch transform: keeps rank r's rows r·B … (r+1)·B of the global stream.

    Every rank runs the same global stream (cheap) so the row ↔ rank mapping
    is the fluid release's, and the stream state is the same on all ranks.
    """

    rank: int
    rows_per_rank: int

    def __call__(self, batch: LMBatch) -> LMBatch:
        rows = slice(self.rank * self.rows_per_rank, (self.rank + 1) * self.rows_per_rank)
        batch.arrays = {k: v[rows] for k, v in batch.arrays.items()}
        batch.mask = batch.mask[rows]
        return batch
