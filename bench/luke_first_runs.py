"""What a LUKE fine-tuning run costs per optimizer step: each task's recipe vs a first short run.

    python bench/luke_first_runs.py [--tasks ner,relation,open_entity,squad --layers 12 --hidden 768
                                     --repeats 2 --warmup 2 --train 300 --dev 24 --threads 2]
    python bench/luke_first_runs.py --layers 2 --hidden 128   # checks the script in a minute

Each fine-tuning job (`configs/ner.yaml`, `relation.yaml`, `open_entity.yaml`,
`squad.yaml`) runs through `engine.trainer.Trainer` as `sh run.sh TASK` runs
it, on a random luke-base-shaped model (HF `LukeModel`: hidden 768, 12
layers, 12 heads, vocabulary 50,267, entity table 10,000 × 256, converted
with `luke_static.formats.convert`) and synthetic data in each task's file
format, long enough for `data.max_seq_length` to matter: CoNLL-2003
documents of ~36 sentences (the context fills 512 subwords), TACRED records
of 10-55 words, Open Entity sentences of 10-60 words, SQuAD 1.1 contexts of
300-480 words. Settings per task: the recipe as shipped, a first short run
(`optim.accumulate_steps=1`, `data.max_seq_length=128`; SQuAD 256 with
`data.doc_stride=64`), and one in between (NER 256, relation accumulation
alone, SQuAD 384).

Per (task, setting) line: the keys changed, seconds per optimizer step (the
median of `--repeats` timed steps, after the whole steps holding the first
`--warmup` micro-batches), real (unpadded) tokens and padded input rows per
second, `cpu` (the process's CPU time over the timed steps ÷ their wall
time × threads; well below a quiet machine's figure, other processes took
the cores and the step times are too long), and the seconds of the one dev
evaluation at the end (a dev set of `--dev` records: NER sentences, relation
and Open Entity records, SQuAD questions; the decoding program's first run
and the metric, not its building) with the model inputs it made (NER
features, SQuAD windows). An evaluation costs about linearly in its inputs,
so scale by the real dev set's size (100 records: ~4× the `--dev 24`
figure). Checkpoints, the best-parameter copy and the export are skipped
(file writing, not training). Per task: `TASK recipe / short run: X` (the
recipe's step time ÷ the short run's). The default run takes ~15 minutes on
2 cores.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from common import Results, cpu_model, parser, set_threads, torch_threads

REPO = Path(__file__).resolve().parents[1]
TASKS = {  # task: (recipe in the repository, job class)
    "ner": ("configs/ner.yaml", "luke_static.ner.job.NerTraining"),
    "relation": ("configs/relation.yaml", "luke_static.relation.job.RelationTraining"),
    "open_entity": ("configs/open_entity.yaml", "luke_static.open_entity.job.OpenEntityTraining"),
    "squad": ("configs/squad.yaml", "luke_static.squad.job.SquadTraining"),
}
# The settings compared: a label and the -o items changed from the recipe; the first is the recipe,
# the last the first short run.
SETTINGS = {
    "ner": [{}, {"optim.accumulate_steps": 1, "data.max_seq_length": 256},
            {"optim.accumulate_steps": 1, "data.max_seq_length": 128}],
    "relation": [{}, {"optim.accumulate_steps": 1},
                 {"optim.accumulate_steps": 1, "data.max_seq_length": 128}],
    "open_entity": [{}, {"optim.accumulate_steps": 1, "data.max_seq_length": 128}],
    "squad": [{}, {"optim.accumulate_steps": 1, "data.max_seq_length": 384},
              {"optim.accumulate_steps": 1, "data.max_seq_length": 256, "data.doc_stride": 64}],
}


def main():
    p = parser(__doc__)
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated, of " + ", ".join(TASKS))
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--heads", type=int, default=0, help="attention heads (0: hidden / 64)")
    p.add_argument("--entity-vocab", type=int, default=10000)
    p.add_argument("--train", type=int, default=300, help="training records per task")
    p.add_argument("--dev", type=int, default=24, help="dev records per task (the evaluation timed)")
    p.add_argument("--keep", help="keep the model, data and run directories here (default: a temporary one)")
    p.set_defaults(repeats=2, warmup=2)
    p.epilog = "--repeats: timed optimizer steps per setting; --warmup: micro-batches run (in whole steps) first"
    a = p.parse_args()
    tasks = [t.strip() for t in a.tasks.split(",") if t.strip()]
    unknown = set(tasks) - set(TASKS)
    if unknown:
        p.error(f"--tasks: unknown {', '.join(sorted(unknown))} (of {', '.join(TASKS)})")
    a.heads = a.heads or max(1, a.hidden // 64)
    results = Results("luke_first_runs", a)
    set_threads(a.threads, keep_memory=not a.default_malloc)
    torch_threads(a.threads)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"paddle\.")  # its chatter between the lines
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        root = Path(a.keep) if a.keep else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        root.mkdir(parents=True, exist_ok=True)
        data = write_data(root / "data", tasks, a.train, a.dev)
        model = write_model(root / "luke", data.corpus, data.titles, a)
        data.check_lengths(model)
        print(f"{cpu_model()} | threads {a.threads} | {a.layers} layers, hidden {a.hidden}, {a.heads} heads, "
              f"vocabulary 50,267, entity table {a.entity_vocab:,} × 256 | {a.repeats} timed step(s) after "
              f"the steps of the first {a.warmup} micro-batch(es) | dev sets of {a.dev} records")
        print(data.describe(model))
        print(f"{'task':<12} {'setting (-o changes from the recipe)':<56} {'s/step':>8} {'tok/s':>8} "
              f"{'rows/s':>7} {'cpu':>4} {'eval s':>7}  dev inputs")
        for task in tasks:
            timings = []
            for changes in SETTINGS[task]:
                t = run(task, changes, data.paths[task], model, root / "runs" / task, a)
                timings.append(t)
                print(f"{task:<12} {t.label:<56} {t.step_s:8.2f} {t.tokens_per_s:8,.0f} {t.rows_per_s:7.2f} "
                      f"{100 * t.cpu_share:3.0f}% {t.eval_s:7.1f}  {t.dev_inputs} × {t.seq}", flush=True)
            results.ratio(f"{task} recipe / short run", timings[0].step_s / timings[-1].step_s,
                          title=f"LUKE {task}: recipe step ÷ first-short-run step")
    print(f"wall time {time.perf_counter() - start:.0f} s")
    results.save()


# -- runs ---------------------------------------------------------------------------------


@dataclass
class Timing:
    label: str
    seq: int
    step_s: float
    tokens_per_s: float
    rows_per_s: float
    eval_s: float
    dev_inputs: int
    cpu_share: float  # CPU time of the timed steps ÷ (their wall time × threads)


def run(task: str, changes: dict, paths: dict, model: Path, runs: Path, a) -> Timing:
    """One fine-tuning run of `task` with the recipe's settings plus `changes`: its step and eval timings."""
    import importlib

    import paddle

    from engine.config import load_config

    recipe, job_path = TASKS[task]
    recipe = REPO / recipe
    module, name = job_path.rsplit(".", 1)
    job_class = getattr(importlib.import_module(module), name)
    defaults = load_config(job_class.config_class, recipe, [])
    accumulate = changes.get("optim.accumulate_steps", defaults.optim.accumulate_steps)
    warmup_steps = math.ceil(a.warmup / accumulate)
    output = runs / "-".join(f"{k.split('.')[-1]}{v}" for k, v in changes.items()) if changes else runs / "recipe"
    shutil.rmtree(output, ignore_errors=True)
    items = {"data.train": paths["train"], "data.dev": paths["dev"], "model.luke": model,
             "train.output_dir": output, "train.max_steps": warmup_steps + a.repeats,
             "train.log_every": warmup_steps + a.repeats, "train.eval_every": 0, "train.save_every": 0,
             "runtime.threads": a.threads, "runtime.keep_memory": not a.default_malloc, **changes}
    cfg = load_config(job_class.config_class, recipe, [f"{k}={v}" for k, v in items.items()])
    output.mkdir(parents=True, exist_ok=True)
    log = output / "trainer.log"
    with open(log, "w") as out, contextlib.redirect_stdout(out), paddle.static.scope_guard(paddle.static.Scope()):
        try:
            job = job_class(cfg)
            eval_s = timed_dev_score(job)
            trainer = timed_trainer(job, cfg.train, cfg.optim, cfg.runtime)
            trainer.fit()
        except BaseException:
            out.flush()
            sys.stderr.write(f"{task} {changes or 'recipe'} failed; the end of {log}:\n"
                             + "".join(log.read_text().splitlines(True)[-20:]))
            raise
    steps = trainer.step_times[warmup_steps:]
    tokens = trainer.step_tokens[warmup_steps:]
    cpu_share = sum(trainer.step_cpu[warmup_steps:]) / sum(steps) / a.threads
    step_s = statistics.median(steps)
    rows = cfg.train.batch_size * cfg.optim.accumulate_steps
    b, k, s = cfg.train.batch_size, cfg.optim.accumulate_steps, cfg.data.max_seq_length
    label = " ".join(f"{key.split('.')[-1]}={v}" for key, v in changes.items()) or f"recipe: batch {b}×{k}, seq {s}"
    shutil.rmtree(output, ignore_errors=True)
    return Timing(label, s, step_s, sum(tokens) / sum(steps), rows / step_s, eval_s[0], dev_inputs(job), cpu_share)


def timed_trainer(*args):
    """A `Trainer` that times each optimizer step (its micro-batches, the update, the schedule) and writes
    no checkpoints."""
    from engine.trainer import Trainer

    class TimedTrainer(Trainer):
        def __init__(self, *args):
            super().__init__(*args)
            self.step_times: list[float] = []
            self.step_cpu: list[float] = []  # this process's CPU seconds (all its threads)
            self.step_tokens: list[int] = []

        def _step(self, graph, batches, state, log):
            start, cpu = time.perf_counter(), time.process_time()
            result = super()._step(graph, batches, state, log)
            if result is not None:
                self.step_times.append(time.perf_counter() - start)
                self.step_cpu.append(time.process_time() - cpu)
                self.step_tokens.append(result[2])
            return result

        def _save(self, state, log, graph):
            self._saved_step = state.step  # a luke-base checkpoint is ~1.8 GB of file writing, not training

    return TimedTrainer(*args)


def timed_dev_score(job) -> list[float]:
    """Times the job's dev scoring (a one-item list filled in when it runs); keeps no best-parameter copy
    and exports nothing."""
    seconds = [float("nan")]
    score = job.score

    def timed(exe, split):
        job.decoding_program()  # built once, before the clock starts
        start = time.perf_counter()
        metrics = score(exe, split)
        if split == "dev":
            seconds[0] = time.perf_counter() - start
        return metrics

    job.score = timed
    job.best_metric = None
    job.export = lambda exe, output_dir, onnx=False: {}
    return seconds


def dev_inputs(job) -> int:
    """Model inputs of the dev split (NER features, SQuAD windows, records)."""
    dev = job.splits["dev"]
    if isinstance(dev, tuple):  # SQuAD: (examples, windows)
        return len(dev[1])
    return len(dev["input_ids"])


# -- the model ------------------------------------------------------------------------------


def write_model(root: Path, corpus: list[str], titles: list[str], a) -> Path:
    """A random HF LukeModel of luke-base's shape (or --layers/--hidden's) with a BPE trained on `corpus`,
    converted into our model directory."""
    import tokenizers
    import torch
    import transformers

    from luke_static.formats import convert

    src = root / "hf"
    src.mkdir(parents=True, exist_ok=True)
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=BPE_VOCAB, min_frequency=2,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(src))
    entities = ["[PAD]", "[UNK]", "[MASK]", "[MASK2]", *titles][: a.entity_vocab]
    (src / "entity_vocab.json").write_text(json.dumps({t: i for i, t in enumerate(entities)}, ensure_ascii=False))
    config = transformers.LukeConfig(vocab_size=50267, entity_vocab_size=a.entity_vocab, hidden_size=a.hidden,
                                     entity_emb_size=256, num_hidden_layers=a.layers, num_attention_heads=a.heads,
                                     intermediate_size=4 * a.hidden, max_position_embeddings=514,
                                     type_vocab_size=1, layer_norm_eps=1e-5)
    torch.manual_seed(0)
    transformers.utils.logging.disable_progress_bar()
    transformers.LukeModel(config).save_pretrained(src)
    convert("hf", src, root / "model")
    shutil.rmtree(src)
    return root / "model"


# -- synthetic data -------------------------------------------------------------------------

BPE_VOCAB = 4500  # fewer than the text's words: ~1.3 subwords a word, as RoBERTa's BPE on English news
NER_TYPES = ["PER", "LOC", "ORG", "MISC"]
TYPING_LABELS = ["entity", "event", "group", "location", "object", "organization", "person", "place", "time"]
RELATIONS = ["no_relation", "org:founded_by", "org:members", "per:employee_of", "per:origin", "per:title",
             "per:spouse", "per:cities_of_residence", "org:city_of_headquarters", "per:age"]


class Words:
    """Pseudo-English: 4,000 words drawn by a Zipf law, capitalised names, punctuation."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        onsets = ["", "b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "v", "w", "st", "tr", "ch",
                  "sh", "pl", "gr"]
        nuclei = ["a", "e", "i", "o", "u", "ea", "ou", "ai", "io"]
        codas = ["", "", "n", "r", "s", "t", "l", "nd", "st", "ng", "rk", "m"]
        seen, words = set(), []
        while len(words) < 4000:
            n = rng.choice([1, 1, 2, 2, 2, 3, 3, 4])
            word = "".join(rng.choice(onsets) + rng.choice(nuclei) + rng.choice(codas) for _ in range(n))
            if word not in seen:
                seen.add(word)
                words.append(word)
        self.words = words
        self.weights = [1 / (r + 1) for r in range(len(words))]
        self.names = sorted({w.capitalize() for w in rng.sample(words[200:], 600)})

    def common(self, n: int) -> list[str]:
        out = self.rng.choices(self.words, self.weights, k=n)
        for i in range(1, n):  # commas here and there
            if self.rng.random() < 0.06:
                out[i] = ","
        return out

    def name(self) -> list[str]:
        return self.rng.sample(self.names, self.rng.choice([1, 1, 2, 2, 3]))


@dataclass
class Data:
    paths: dict = field(default_factory=dict)  # task: {"train": path, "dev": path}
    corpus: list = field(default_factory=list)  # every text, for the BPE
    titles: list = field(default_factory=list)  # entity titles for the entity vocabulary
    texts: dict = field(default_factory=dict)  # task: units whose subword lengths the header reports

    def check_lengths(self, model: Path) -> None:
        """Relation records longer than 128 subwords are an error for the short run: there are none."""
        from luke_static.relation.data import encode_relations, read_relations
        from luke_static.tokenizer import LukeTokenizer

        if "relation" not in self.paths:
            return
        tokenizer = LukeTokenizer.from_dir(model, add_prefix_space=True, task="entity_pair_classification")
        for split in ("train", "dev"):
            encode_relations(read_relations(self.paths["relation"][split]), tokenizer, None, 128)

    def describe(self, model: Path) -> str:
        from luke_static.tokenizer import LukeTokenizer

        tokenizer = LukeTokenizer.from_dir(model, add_prefix_space=True)
        parts = []
        for task, (what, texts) in self.texts.items():
            lengths = sorted(len(tokenizer.word_piece_ids(" " + t)) for t in texts)
            parts.append(f"{task}: {what} of {statistics.mean(lengths):.0f} subwords "
                         f"(median {statistics.median(lengths):.0f}, max {lengths[-1]})")
        return "data: " + " | ".join(parts)


def write_data(root: Path, tasks: list[str], n_train: int, n_dev: int) -> Data:
    words = Words(random.Random(0))
    data = Data(titles=[" ".join([n, m]) for n, m in zip(words.names[::2], words.names[1::2])] + words.names)
    writers = {"ner": write_ner, "relation": write_relation, "open_entity": write_open_entity, "squad": write_squad}
    for task in tasks:
        (root / task).mkdir(parents=True, exist_ok=True)
        data.paths[task] = {}
        for split, n, seed in (("train", n_train, 1), ("dev", n_dev, 2)):
            words.rng = random.Random(f"{task}-{seed}")
            text, units = writers[task](root / task, split, n, words)
            data.paths[task][split] = str(root / task / f"{split}.{'txt' if task == 'ner' else 'json'}")
            data.corpus += text
            if split == "train":
                data.texts[task] = units
    return data


def write_ner(root: Path, split: str, n: int, w: Words):
    """CoNLL-2003 columns: n sentences of 5-28 words, 0-3 entities each, ~36 sentences a document."""
    lines, sentences, documents, document = [], [], [], []
    for i in range(n):
        if i % 36 == 0:
            lines += ["-DOCSTART- -X- -X- O", ""]
            if document:
                documents.append(" ".join(document))
            document = []
        tokens = []
        for word in w.common(w.rng.randint(5, 24)):
            tokens.append((word, "O"))
            if w.rng.random() < 0.1:
                kind = w.rng.choice(NER_TYPES)
                tokens += [(part, f"{'B' if k == 0 else 'I'}-{kind}") for k, part in enumerate(w.name())]
        tokens.append((".", "O"))
        lines += [f"{word} NN I-NP {tag}" for word, tag in tokens] + [""]
        sentences.append(" ".join(word for word, _ in tokens))
        document.append(sentences[-1])
    documents.append(" ".join(document))
    (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return sentences, ("documents", documents)


def _sentence_with(w: Words, length: int, mentions: list[list[str]]) -> tuple[list[str], list[tuple[int, int]]]:
    """`length` common words with each mention inserted at a random place; the mentions' word spans."""
    tokens = w.common(length)
    places = sorted(w.rng.sample(range(length), len(mentions)))
    out, spans = [], []
    for i, word in enumerate(tokens):
        if places and places[0] == i:
            places.pop(0)
            mention = mentions[len(spans)]
            spans.append((len(out), len(out) + len(mention)))
            out += mention
        out.append(word)
    return out + ["."], spans


def write_relation(root: Path, split: str, n: int, w: Words):
    """TACRED records: 10-55 words, a subject and an object of 1-3 words, ends inclusive."""
    records, texts = [], []
    for i in range(n):
        subject, obj = w.name(), w.name()
        tokens, ((s0, s1), (o0, o1)) = _sentence_with(w, w.rng.randint(8, 50), [subject, obj])
        if w.rng.random() < 0.5:
            (s0, s1), (o0, o1) = (o0, o1), (s0, s1)
        records.append({"id": f"{split}{i}", "relation": w.rng.choice(RELATIONS), "token": tokens,
                        "subj_start": s0, "subj_end": s1 - 1, "obj_start": o0, "obj_end": o1 - 1,
                        "subj_type": "PERSON", "obj_type": "ORGANIZATION"})
        texts.append(" ".join(tokens))
    (root / f"{split}.json").write_text(json.dumps(records))
    return texts, ("records", texts)


def write_open_entity(root: Path, split: str, n: int, w: Words):
    """Open Entity records: 10-60 words, one mention (character offsets), 1-3 of the 9 general types."""
    records, texts = [], []
    for _ in range(n):
        tokens, [(a, b)] = _sentence_with(w, w.rng.randint(9, 58), [w.name()])
        start = len(" ".join(tokens[:a])) + (1 if a else 0)
        end = start + len(" ".join(tokens[a:b]))
        sent = " ".join(tokens)
        records.append({"sent": sent, "start": start, "end": end,
                        "labels": w.rng.sample(TYPING_LABELS, w.rng.randint(1, 3))})
        texts.append(sent)
    (root / f"{split}.json").write_text(json.dumps(records))
    return texts, ("sentences", texts)


def write_squad(root: Path, split: str, n: int, w: Words):
    """SQuAD 1.1: contexts of 300-480 words, three questions each (n questions), answers of 1-4 words."""
    paragraphs, texts = [], []
    for p in range(math.ceil(n / 3)):
        tokens = w.common(w.rng.randint(300, 480))
        context = " ".join(tokens)
        qas = []
        for q in range(min(3, n - 3 * p)):
            a = w.rng.randrange(len(tokens) - 4)
            b = a + w.rng.randint(1, 4)
            answer = " ".join(tokens[a:b])
            start = len(" ".join(tokens[:a])) + (1 if a else 0)
            question = " ".join(w.common(w.rng.randint(5, 10)) + tokens[max(0, a - 3):a]) + " ?"
            qas.append({"id": f"{split}{p}-{q}", "question": question,
                        "answers": [{"text": answer, "answer_start": start}]})
            texts.append(question)
        paragraphs.append({"context": context, "qas": qas})
        texts.append(context)
    (root / f"{split}.json").write_text(json.dumps({"version": "1.1",
                                                     "data": [{"title": split, "paragraphs": paragraphs}]}))
    return texts, ("contexts", [p["context"] for p in paragraphs])


if __name__ == "__main__":
    main()
