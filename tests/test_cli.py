"""The command-line tools, run as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args, check=True):
    """`python -m ARGS` as a user runs it: no log level set, a thread count of the user's own."""
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "4"})
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def tiny_overrides(corpus: dict, out: Path) -> list[str]:
    items = {"data.source": "files", "data.train": corpus["train"], "data.dev": corpus["dev"],
             "data.vocab": corpus["vocab"], "data.num_steps": 6, "data.num_workers": 0,
             "model.embed_size": 8, "model.hidden_size": 16, "model.softmax": "full",
             "train.output_dir": str(out), "train.batch_size": 4, "train.max_steps": 6, "train.log_every": 3}
    return [a for k, v in items.items() for a in ("-o", f"{k}={v}")]


@pytest.mark.slow
def test_train_evaluate_export(toy_corpus, tmp_path):
    out = tmp_path / "run"
    proc = run("bilm", "train", "--config", "configs/elmo.yaml", *tiny_overrides(toy_corpus, out))
    assert "eval at step 6 | dev ppl" in proc.stdout and "unigram ppl" in proc.stdout
    assert (out / "config.yaml").is_file() and (out / "model" / "lstmp_3.w_1").is_file()

    proc = run("bilm", "evaluate", "--model", str(out / "model"), "--input", toy_corpus["dev"],
               "--batch-size", "4", "--num-steps", "6", "--json")
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.stderr == ""  # no Paddle chatter: the command set the log level and hid the notices itself
    final = json.loads((out / "train_log.jsonl").read_text().splitlines()[-1])["eval"]
    assert metrics["ppl"] == pytest.approx(final["ppl"], rel=1e-5)

    checkpoint = next((out / "checkpoints").iterdir())
    proc = run("bilm", "export", "--model", str(checkpoint), "--output", str(tmp_path / "exported"))
    assert (tmp_path / "exported" / "elmo.pdiparams").is_file()


@pytest.mark.parametrize("args, message", [
    (["-o", "train.max_stpes=3"], "override: unknown key 'train.max_stpes' (did you mean 'max_steps'?)"),
    (["-o", "model.hidden_size=big"], "-o model.hidden_size=big: 'model.hidden_size' must be an int, got 'big'"),
    (["-o", "data.source=files", "-o", "data.train=/nonexistent/*"], "no training files match '/nonexistent/*'"),
])
def test_user_mistakes_exit_with_one_line(args, message, tmp_path):
    out = tmp_path / "run"
    proc = run("bilm", "train", "--config", "configs/elmo.yaml", *args, "-o", f"train.output_dir={out}", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {message}"]  # nothing else: no Paddle notices either
    assert not out.exists()  # a run that fails before its first step leaves no directory it made


def test_a_wrong_value_in_a_recipe_is_blamed_on_the_recipe(tmp_path):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("job: bilm.pretrain.ElmoPretraining\ntrain:\n  max_steps: ten\n")
    proc = run("engine", "--config", str(recipe), check=False)
    assert proc.stderr.strip().splitlines() == [f"error: {recipe}: 'train.max_steps' must be an int, got 'ten'"]


@pytest.mark.parametrize("argv, message", [
    (["bilm", "dmp"], "error: python -m bilm: unknown verb 'dmp' (verbs: train, evaluate, export, dump, "
                      "import-bilm-tf, export-bilm-tf, import-elmoformanylangs, import-fluid, "
                      "cache-token-embeddings)"),
    (["luke_static", "predict", "--model", "/nonexistent", "--input", "x"],
     "error: /nonexistent: no such directory (a task export or a converted model directory)"),
])
def test_verbs_and_their_mistakes(argv, message):
    proc = run(*argv, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [message]


def test_every_package_lists_its_verbs():
    for package, verb in (("bilm", "import-fluid"), ("luke_static", "fill-mask"), ("tagger", "predict")):
        proc = run(package, "--help")
        assert f"  {verb} " in proc.stdout, proc.stdout
        assert run(package, verb, "--help").stdout.startswith(f"usage: python -m {package} {verb}")


def test_show_lists_every_key_with_its_value_default_and_meaning():
    proc = run("engine", "--config", "configs/elmo_char.yaml", "--show", "-o", "train.max_steps=7")
    lines = proc.stdout.splitlines()
    assert "model.input = char   (default word)" in lines
    assert "train.max_steps = 7   (default 140000)" in lines  # the override, over elmo.yaml's 1200
    assert "model.num_layers = 2" in lines
    assert lines[lines.index("model.hidden_size = 512   (default 4096)") + 1].strip() == "LSTM cell size"


@pytest.mark.slow
def test_a_corpus_error_in_the_reader_is_one_line_and_nothing_else(toy_corpus, tmp_path):
    """The reader worker reports the bad line and shuts its own processes down (no leaked semaphores)."""
    shard = sorted(Path(toy_corpus["train"]).parent.glob("*.txt"))[0]
    shard.write_bytes(shard.read_bytes() + b"the cat \xff\xfe sees\n")
    bad_line = len(shard.read_bytes().splitlines())
    for workers in (0, 1, 2):
        out = tmp_path / f"run{workers}"
        args = tiny_overrides(toy_corpus, out) + ["-o", f"data.num_workers={workers}", "-o", "train.max_steps=200"]
        proc = run("bilm", "train", "--config", "configs/elmo.yaml", *args, check=False)
        assert proc.returncode == 2
        assert proc.stderr.strip().splitlines() == [f"error: {shard}:{bad_line}: not valid UTF-8 (invalid start "
                                                    "byte at byte 8)"], proc.stderr


def test_serving_imports_no_training_code():
    code = ("import sys, bilm.embedder, luke_static.pipelines, tagger.predict; "
            "print(sorted(m for m in ('bilm.lm', 'reader.lm', 'reader.prefetch', 'engine.trainer', 'engine.step') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
