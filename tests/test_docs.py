"""The README and docs/ are tested like code: links resolve, every command named exists, and the
workflows a newcomer follows run as the pages write them (only the user's paths change).

The workflow tests run the pages' commands in a sandbox directory that holds the files the commands
name (`data/train/*`, `path/to/luke-base`, …): real English prose for a corpus, a tiny Chinese LAC
set, tiny HF LUKE checkpoints. The LUKE checkpoints and the Chinese ELMo are tiny, so the recipes'
short runs take seconds.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def code_blocks(page: Path) -> list[tuple[str, str]]:
    """(info string, text) of every fenced block of a page."""
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(page.read_text(encoding="utf-8"))]


def commands(text: str) -> list[str]:
    """The command lines of a shell block, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", "", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def doc_command(page: str, start: str) -> str:
    """The one command of a page's shell blocks that starts with `start`."""
    found = [c for info, text in code_blocks(ROOT / page) if info == "sh"
             for c in commands(text) if c.startswith(start)]
    assert len(found) == 1, f"{page}: {len(found)} commands start with {start!r}"
    return found[0]


def doc_python(page: str, contains: str) -> str:
    """The one Python block of a page that contains `contains`."""
    found = [text for info, text in code_blocks(ROOT / page) if info == "python" and contains in text]
    assert len(found) == 1, f"{page}: {len(found)} Python blocks contain {contains!r}"
    return found[0]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


# -- the pages hold together ---------------------------------------------------------------


def test_every_link_and_image_resolves():
    for page in PAGES:
        for target in _LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # another site
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.name}: {target} does not exist"
            if anchor:
                headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.M)
                assert anchor in {slug(h) for h in headings}, f"{page.name}: no heading #{anchor} in {linked.name}"


def test_every_command_the_pages_name_exists():
    from engine.command import dispatch  # noqa: F401 - the packages' verb tables import it

    named = 0
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for job in re.findall(r"sh run\.sh ([a-z_]+)", text):
            assert job == "test" or (ROOT / "configs" / f"{job}.yaml").is_file(), f"{page.name}: no job {job}"
            named += 1
        for module, verb in re.findall(r"python3? -m ([a-z_][\w.]*)(?: ([a-z][\w-]*))?", text):
            assert importlib.util.find_spec(module) is not None, f"{page.name}: no module {module}"
            if module in ("bilm", "luke_static", "tagger") and verb:
                verbs = importlib.import_module(f"{module}.__main__").VERBS
                assert verb.replace("-", "_") in verbs, f"{page.name}: python -m {module} has no verb {verb}"
            named += 1
    assert named > 50


def test_each_page_opens_with_a_command():
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        first_block = _FENCE.search(text)
        assert first_block and first_block.group(1) == "sh", f"{page.name} does not open with a command"
        before = text[:first_block.start()]
        assert len(before.strip().splitlines()) == 1, f"{page.name}: something stands before its first command"


def test_the_readme_fits_a_screen_or_few():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


# -- the workflows run as written ------------------------------------------------------------


class Sandbox:
    """A directory that looks like the project to `run.sh` (its recipes, its environment) and holds the
    user's files; commands run there as a user runs them."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        for name in ("run.sh", "configs", "pyproject.toml"):
            (root / name).symlink_to(ROOT / name)
        (root / ".venv").symlink_to(Path(sys.prefix))
        self.env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                    "PYTHONPATH": str(ROOT)}

    @staticmethod
    def changed(text: str, changes: dict[str, str] | None) -> str:
        """`text` with the user's paths changed (`changes`: old → new; at least one must apply)."""
        if changes:
            assert any(old in text for old in changes), f"none of {list(changes)} is in {text!r}"
            for old, new in changes.items():
                text = text.replace(old, new)
        return text

    def run(self, command: str, changes: dict[str, str] | None = None, check: bool = True):
        command = self.changed(command, changes)
        proc = subprocess.run(["bash", "-c", command], cwd=self.root, env=self.env, capture_output=True, text=True)
        if check:
            assert proc.returncode == 0, f"{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    def python(self, code: str, changes: dict[str, str] | None = None):
        (self.root / "snippet.py").write_text(self.changed(code, changes))
        return self.run(f"{sys.executable} snippet.py")


@pytest.fixture
def sandbox(tmp_path) -> Sandbox:
    if sys.prefix == sys.base_prefix:
        pytest.skip("run.sh needs the project's virtual environment")
    return Sandbox(tmp_path / "project")


def expected_lines(code: str) -> list[str]:
    """What a snippet's `print(...)  # result` comments say it prints, in order."""
    return [line.split("#", 1)[1].strip() for line in code.splitlines() if line.startswith("print(") and "#" in line]


@pytest.mark.slow
def test_pretrain_on_your_corpus_then_vectors_from_files_python_and_your_network(sandbox):
    from reader.default_corpus import build_default_corpus

    # Real prose as the user's corpus: shards, a dev shard and a vocabulary at the paths the page uses.
    corpus = build_default_corpus(sandbox.root / "corpus", max_tokens=60000)
    shutil.copytree(corpus.root / "train", sandbox.root / "data" / "train")
    shutil.copytree(corpus.root / "dev", sandbox.root / "data" / "dev")
    shutil.copy(corpus.vocab, sandbox.root / "data" / "vocab.txt")

    proc = sandbox.run(doc_command("docs/elmo.md", "sh run.sh elmo -o data.source=files"))
    assert "eval at step 50 | dev ppl" in proc.stdout
    assert (sandbox.root / "output/my_elmo/inference/elmo.json").is_file()
    model = {"output/elmo/model": "output/my_elmo/model"}
    proc = sandbox.run(doc_command("docs/operations.md", "python -m engine.verify"), {"output/elmo": "output/my_elmo"})
    assert proc.stdout.count(": intact (") >= 1, proc.stdout

    (sandbox.root / "sentences.txt").write_text("The list is sorted in place .\n\nReturn None .\n")
    sandbox.run(doc_command("docs/elmo-in-your-network.md", "python -m bilm dump"), model)
    import h5py

    with h5py.File(sandbox.root / "elmo.hdf5") as f:
        assert f["0"].shape == (3, 7, 256) and f["1"].shape == (3, 0, 256) and f["2"].shape == (3, 3, 256)

    for page in ("README.md", "docs/elmo-in-your-network.md"):
        snippet = doc_python(page, "elmo.embed_sentences")
        assert len(snippet.strip().splitlines()) <= 5  # three sentences from Python in five lines
        printed = sandbox.python(snippet, model).stdout.strip().splitlines()
        assert printed == expected_lines(snippet)

    network = doc_python("docs/elmo-in-your-network.md", "bilm.load_pretrained")
    assert sandbox.python(network, model).stdout.strip().splitlines() == expected_lines(network)

    # An int8 export measured on the user's sentences, and the dump that runs it.
    proc = sandbox.run(doc_command("docs/serving.md", "python -m bilm export --model output/elmo/model --output "
                                                      "serving/elmo_int8"), model)
    assert "int8 against fp32 on the check set: layer_0" in proc.stdout
    proc = sandbox.run(doc_command("docs/serving.md", "python -m bilm dump --model serving/elmo_int8"))
    assert "tokens/s, int8, onnxruntime)" in proc.stdout

    # Serving the export: paddle.inference by hand, and the project's wrapper on ONNX Runtime.
    elmo_export = "python -m bilm export --model output/elmo/model --output serving/elmo "
    sandbox.run(doc_command("docs/serving.md", elmo_export), model)
    run = {"output/elmo/inference": "output/my_elmo/inference"}
    for contains, said, shape in (("inference.create_predictor", "# [2, 3, 5, 256]", "(2, 3, 5, 256)"),
                                  ("InferenceProgram(", "# (2, 3, 4, 256)", "(2, 3, 4, 256)")):
        snippet = doc_python("docs/serving.md", contains)
        assert said in snippet  # what the page says the snippet returns
        changes = run if "output/elmo/inference" in snippet else None  # the other reads the export just made
        assert sandbox.python(snippet + "\nprint(layers.shape)\n", changes).stdout.strip() == shape


def write_lac_demo(root: Path) -> None:
    """LAC-demo-like files: segmented Chinese, one tag per word, chunks over words (`nt-B nt-I nt-I`)."""
    import random

    subjects = [("中国 人民 银行", "nt"), ("北京 大学", "nt"), ("三 名 学生", "m-n"), ("老师", "n"), ("我们", "r")]
    verbs, times = ["发布", "参加", "喜欢", "看到"], ["今天", "昨天", "明天"]
    places, objects = ["北京", "上海", "广州"], ["公告", "比赛", "电影", "新闻"]
    rng, lines, raw = random.Random(7), [], []
    for _ in range(160):
        words, tags = [], []
        subject, kind = rng.choice(subjects)
        parts = subject.split()
        if kind == "m-n":
            words += parts
            tags += ["m-B", "m-I", "n-B"]
        else:
            words += parts
            tags += [f"{kind}-B"] + [f"{kind}-I"] * (len(parts) - 1)
        words += [rng.choice(times), "在", rng.choice(places), rng.choice(verbs), "了", rng.choice(objects)]
        tags += ["t-B", "p-B", "ns-B", "v-B", "u-B", "n-B"]
        lines.append(" ".join(words) + "\t" + " ".join(tags))
        raw.append("".join(words))
    (root / "data" / "lac").mkdir(parents=True)
    (root / "data" / "lac" / "train.tsv").write_text("\n".join(lines[:120]) + "\n", encoding="utf-8")
    (root / "data" / "lac" / "dev.tsv").write_text("\n".join(lines[120:]) + "\n", encoding="utf-8")
    (root / "raw_zh.txt").write_text("\n".join(raw[120:126]) + "\n", encoding="utf-8")
    # The Chinese ELMo's corpus: the same sentences, segmented.
    (root / "zh" / "train").mkdir(parents=True)
    (root / "zh" / "train" / "a.txt").write_text("\n".join(line.split("\t")[0] for line in lines) + "\n")
    words = sorted({w for line in lines for w in line.split("\t")[0].split()})
    (root / "zh" / "vocab.txt").write_text("\n".join(["<S>", "</S>", "<UNK>", *words]) + "\n")


@pytest.mark.slow
def test_train_the_tagger_on_the_demo_files_and_tag_raw_chinese(sandbox, static_scope):
    from helpers.bilm import tiny_config, train

    write_lac_demo(sandbox.root)
    zh = {"train": str(sandbox.root / "zh/train/*.txt"), "dev": str(sandbox.root / "zh/train/*.txt"),
          "vocab": str(sandbox.root / "zh/vocab.txt")}
    train(tiny_config(zh, sandbox.root / "elmo_run", **{"model.softmax": "full", "train.max_steps": 10}))
    shutil.copytree(sandbox.root / "elmo_run" / "model", sandbox.root / "models" / "elmo_zh")

    proc = sandbox.run(doc_command("docs/elmo-in-your-network.md", "sh run.sh lac -o data.train=data/lac/train.tsv "
                                                                   "-o data.dev=data/lac/dev.tsv -o model.elmo_model"))
    assert "dev chunk P" in proc.stdout
    proc = sandbox.run(doc_command("docs/elmo-in-your-network.md", "python -m tagger predict"))
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    raw = (sandbox.root / "raw_zh.txt").read_text(encoding="utf-8").splitlines()
    vocabulary = set((sandbox.root / "zh/vocab.txt").read_text().split())
    from reader.chunks import follows_iob2

    assert len(records) == len(raw)
    for line, record in zip(raw, records):
        assert "".join(record["words"]) == line and set(record["words"]) <= vocabulary  # cut into ELMo's words
        assert len(record["tags"]) == len(record["words"]) and follows_iob2([record["tags"]])
    assert proc.stderr.strip().splitlines() == [
        f"note: {len(raw)} line(s) without spaces were cut into the model's vocabulary words, as the training "
        "text was (--segment none keeps lines as they are)"]


@pytest.mark.slow
def test_import_an_elmoformanylangs_model_embed_chinese_train_the_tagger_and_export(sandbox, static_scope):
    pytest.importorskip("elmoformanylangs")
    import h5py

    from helpers.manylangs import build_model, reference_layers

    build_model(sandbox.root / "zh.model")
    write_lac_demo(sandbox.root)
    segmented = [line.split("\t")[0].split() for line in
                 (sandbox.root / "data/lac/dev.tsv").read_text(encoding="utf-8").splitlines()[:5]]
    (sandbox.root / "segmented_zh.txt").write_text("\n".join(" ".join(s) for s in segmented) + "\n", encoding="utf-8")
    page = "docs/elmo.md"
    proc = sandbox.run(doc_command(page, "python -m bilm import-elmoformanylangs"))
    assert "tokens from words (8 wide) and characters" in proc.stdout
    sandbox.run(doc_command(page, "python -m bilm dump --model models/elmo_manylangs_zh"))
    want = reference_layers(sandbox.root / "zh.model", segmented, -1)
    with h5py.File(sandbox.root / "vectors_zh.hdf5") as f:
        for i, layer in enumerate(want):
            assert np.abs(f[str(i)][()] - layer).max() <= 1e-5
    proc = sandbox.run(doc_command(page, "sh run.sh lac -o data.train=data/lac/train.tsv -o data.dev=data/lac/dev.tsv "
                                         "-o model.elmo_model=models/elmo_manylangs_zh"))
    assert "dev chunk P" in proc.stdout
    sandbox.run(doc_command(page, "python -m bilm export --model models/elmo_manylangs_zh"))
    assert (sandbox.root / "models/elmo_manylangs_zh/inference/elmo.onnx").is_file()


def write_luke_checkpoints(root: Path) -> None:
    """Tiny HF checkpoints where the pages have them: a pretrained LUKE and a CoNLL-2003 fine-tuned one."""
    from helpers.luke import save_hf_luke

    labels = ["O", "LOC", "MISC", "ORG", "PER"]
    for name, cls, extra in (("luke-base", "LukeForMaskedLM", {}),
                             ("luke-large-finetuned-conll-2003", "LukeForEntitySpanClassification",
                              {"id2label": dict(enumerate(labels)), "label2id": {t: i for i, t in enumerate(labels)}})):
        _, src = save_hf_luke(root / "hf" / name, cls, max_position_embeddings=520, **extra)
        shutil.copytree(src, root / "path" / "to" / name)


def write_luke_data(root: Path) -> None:
    from helpers.luke import conll, relation_records, typed_records, write_squad

    (root / "data/conll2003").mkdir(parents=True)
    (root / "data/conll2003/eng.train").write_text(conll(30, seed=1))
    (root / "data/conll2003/eng.testa").write_text(conll(9, seed=2))
    (root / "data/tacred").mkdir(parents=True)
    (root / "data/tacred/train.json").write_text(json.dumps(relation_records(30, seed=1)))
    (root / "data/tacred/dev.json").write_text(json.dumps(relation_records(10, seed=2)))
    (root / "data/open_entity").mkdir(parents=True)
    (root / "data/open_entity/train.json").write_text(json.dumps(typed_records()[:24], ensure_ascii=False))
    (root / "data/open_entity/dev.json").write_text(json.dumps(typed_records()[24:], ensure_ascii=False))
    (root / "data/squad").mkdir(parents=True)
    write_squad(root / "data/squad/train-v1.1.json")
    write_squad(root / "data/squad/dev-v1.1.json")
    (root / "sentences.txt").write_text("Ana Ivanovic lives in Los Angeles .\n\nBeyoncé met Ana Ivanovic .\n")
    (root / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in relation_records(3, seed=3)))
    (root / "questions.jsonl").write_text(json.dumps(
        {"id": "q1", "question": "Where does Beyoncé live?", "context": "Beyoncé lives in Los Angeles."}) + "\n")


@pytest.mark.slow
def test_convert_luke_then_ner_relation_and_qa_from_the_command_line_and_python(sandbox):
    write_luke_checkpoints(sandbox.root)
    write_luke_data(sandbox.root)
    sandbox.run(doc_command("docs/luke.md", "python -m luke_static convert --from hf path/to/luke-base"))

    # A fine-tuned checkpoint: convert, export, predict; and the same from Python.
    for start in ("python -m luke_static convert --from hf path/to/luke-large-finetuned-conll-2003",
                  "python -m luke_static export --model models/ner"):
        sandbox.run(doc_command("docs/luke.md", start))
    proc = sandbox.run(doc_command("docs/luke.md", "python -m luke_static predict --model serving/ner"))
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["text"] for r in records] == ["Ana Ivanovic lives in Los Angeles .", "Beyoncé met Ana Ivanovic ."]
    # The same export at int8, measured on the sentences, then served as int8 without being told.
    proc = sandbox.run(doc_command("docs/serving.md", "python -m luke_static export --model models/ner --output "
                                                      "serving/ner_int8 --precision int8"))
    assert "int8 against fp32 on the check set: logits max|Δ|" in proc.stdout
    proc = sandbox.run(doc_command("docs/serving.md", "python -m luke_static predict --model serving/ner_int8"))
    assert [json.loads(line)["text"] for line in proc.stdout.splitlines()] == [r["text"] for r in records]
    assert "(ner, int8, onnxruntime, cpu)" in proc.stderr
    snippet = doc_python("docs/luke.md", 'pipeline("ner", "models/ner")')
    (printed,) = sandbox.python(snippet).stdout.strip().splitlines()
    entities = ast.literal_eval(printed)
    assert all(set(e) == {"text", "label", "start", "end", "score"} for e in entities)

    # Your own fine-tuning: the first short runs, then predictions from their exports.
    first = {"output/relation/inference": "output/relation_first/inference",
             "output/squad/inference": "output/squad_first/inference"}
    for task in ("ner", "relation", "open_entity", "squad"):
        proc = sandbox.run(doc_command("docs/luke.md", f"sh run.sh {task} -o model.luke=models/luke-base"))
        assert (sandbox.root / f"output/{task}_first/inference/task.json").is_file(), proc.stdout
    if shutil.which(os.environ.get("CXX", "c++")):
        proc = sandbox.run(doc_command("docs/luke.md", "sh run.sh open_entity -o runtime.kernels=compiled"))
        assert "note: runtime.kernels: compiled" in proc.stdout, proc.stdout
        assert (sandbox.root / "output/open_entity_fast/inference/task.json").is_file(), proc.stdout
    proc = sandbox.run(doc_command("docs/luke.md", "sh run.sh ner -o model.head=token"))
    assert (sandbox.root / "output/ner_token/inference/token_classification.json").is_file(), proc.stdout
    proc = sandbox.run(doc_command("docs/luke.md", "python -m luke_static predict --model output/relation/inference"),
                       first)
    assert [set(json.loads(line)) >= {"id", "label", "score"} for line in proc.stdout.splitlines()] == [True] * 3
    sandbox.run(doc_command("docs/luke.md", "python -m luke_static predict --model output/squad/inference"), first)
    (answer,) = [json.loads(line) for line in (sandbox.root / "answers.jsonl").read_text().splitlines()]
    assert answer["id"] == "q1" and "Beyoncé lives in Los Angeles."[answer["start"]:answer["end"]] == answer["answer"]
    printed = sandbox.python(doc_python("docs/luke.md", 'pipeline("relation"'), first).stdout.strip().splitlines()
    assert len(printed) == 2 and "'label'" in printed[0] and "'answer'" in printed[1]

    # The pretrained masked LM: fill masks; the encoder's export, read from Python.
    proc = sandbox.run(doc_command("docs/luke.md", "python -m luke_static fill-mask"))
    filled = json.loads(proc.stdout)
    assert len(filled["words"]) == 1 and len(filled["entities"]) == 1 and len(filled["words"][0]) == 5
    sandbox.run(doc_command("docs/luke.md", "python -m luke_static export --model models/luke-base"))
    encoder = doc_python("docs/luke.md", "InferenceProgram(\"serving/luke\")")
    shapes = [line for line in encoder.splitlines() if line.startswith("outputs[")]
    code = encoder.replace(shapes[0], f"print({shapes[0].split('#')[0].strip()})")
    code = code.replace(shapes[1], f"print({shapes[1].split('#')[0].strip()})")
    word, entity = sandbox.python(code).stdout.strip().splitlines()
    assert word.startswith("(1, ") and word.endswith(", 32)") and entity == "(1, 2, 32)"  # the tiny model's width


REVIEWS = [("这家餐厅的菜很好吃", "正面"), ("服务很好，我很喜欢", "正面"), ("东京的酒店很干净，很好", "正面"),
           ("菜太咸了，不好吃", "负面"), ("服务太慢，我不喜欢", "负面"), ("房间太小，不干净", "负面")]


@pytest.mark.slow
def test_classify_chinese_reviews_with_mluke_as_the_page_says(sandbox):
    from helpers.luke import save_hf_mluke

    _, src = save_hf_mluke(sandbox.root / "hf")
    shutil.copytree(src, sandbox.root / "path/to/mluke-base")
    (sandbox.root / "data/reviews").mkdir(parents=True)
    for split, rows in (("train", REVIEWS * 6), ("dev", REVIEWS)):
        lines = ["text\tlabel", *(f"{text}\t{label}" for text, label in rows)]
        (sandbox.root / f"data/reviews/{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (sandbox.root / "texts.txt").write_text("服务很好，我很喜欢\n房间太小，不干净\n", encoding="utf-8")
    page = "docs/classify.md"
    for start in ("python -m luke_static convert --from hf path/to/mluke-base", "sh run.sh classify",
                  "python -m luke_static predict --model output/reviews/inference"):
        proc = sandbox.run(doc_command(page, start))
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["text"] for r in records] == ["服务很好，我很喜欢", "房间太小，不干净"]
    assert all(set(r) == {"text", "label", "score"} and r["label"] in ("正面", "负面") for r in records)
    one, several = sandbox.python(doc_python(page, 'pipeline("text-classification"')).stdout.strip().splitlines()
    assert set(ast.literal_eval(one)) == {"label", "score"} and len(ast.literal_eval(several)) == 2

    # The page's example of a mistake, as the page prints it.
    (error,) = [text.strip() for info, text in code_blocks(ROOT / page) if info == "text" and "error:" in text]
    bad = REVIEWS[:2] + [("还可以吧", "neutral")]
    (sandbox.root / "data/reviews/dev.tsv").write_text(
        "\n".join(["text\tlabel", *(f"{t}\t{label}" for t, label in bad)]) + "\n", encoding="utf-8")
    proc = sandbox.run(doc_command(page, "sh run.sh classify"), check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [error]


@pytest.mark.slow
def test_the_mistakes_a_newcomer_makes_are_one_line_each(sandbox):
    write_luke_checkpoints(sandbox.root)
    write_luke_data(sandbox.root)
    sandbox.run(doc_command("docs/luke.md", "python -m luke_static convert --from hf path/to/luke-base"))
    first_ner = doc_command("docs/luke.md", "sh run.sh ner -o model.luke=models/luke-base")

    missing = sandbox.run(first_ner + " -o data.test=data/conll2003/eng.testb", check=False)
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        "error: data.test: no such file data/conll2003/eng.testb; -o data.test= skips it"]
    assert not (sandbox.root / "output" / "ner_first").exists()

    bad = sandbox.run(first_ner.replace("train.max_steps=50", "train.max_steps=ten"), check=False)
    assert bad.stderr.strip().splitlines() == ["error: -o train.max_steps=ten: 'train.max_steps' must be an int, "
                                               "got 'ten'"]

    sandbox.run(doc_command("docs/luke.md", "python -m luke_static convert --from hf path/to/luke-large-finetuned"))
    other = sandbox.run("python -m luke_static predict --model models/ner --input questions.jsonl "
                        "--task question_answering", check=False)
    assert other.returncode == 2 and other.stderr.strip().splitlines() == [
        "error: models/ner is a ner model, not question_answering: use pipeline('ner', …) or "
        "python -m luke_static predict (it reads the task from the model)"]
