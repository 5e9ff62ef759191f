"""Failure and recovery: SIGKILL mid-run, a kill inside a save, non-finite losses."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.checkpoint import CheckpointManager
from engine.variables import read_tensor

pytestmark = pytest.mark.slow  # runs killed in subprocesses

ROOT = Path(__file__).resolve().parents[1]
ENV = {"GLOG_minloglevel": "2", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
STEPS = 200


def overrides(corpus: dict, out: Path, **extra) -> list[str]:
    items = {"data.source": "files", "data.train": corpus["train"], "data.dev": corpus["dev"],
             "data.vocab": corpus["vocab"], "data.num_steps": 6, "data.num_workers": 0,
             "model.embed_size": 8, "model.hidden_size": 16, "model.softmax": "sampled", "model.num_samples": 8,
             "train.output_dir": str(out), "train.batch_size": 4, "train.max_steps": 40,
             "train.log_every": 5, "train.save_every": 5, "train.eval_every": 0, **extra}
    return [a for k, v in items.items() for a in ("-o", f"{k}={v}")]


def train_command(*args) -> list[str]:
    return [sys.executable, "-m", "bilm", "train", "--config", "configs/elmo.yaml", *args]


def final_variables(out: Path, step: int) -> dict[str, np.ndarray]:
    path = out / "checkpoints" / f"step-{step:08d}"
    skip = {"trainer_state.json", "carry.npz", "manifest.json", "model.json", "vocab.txt"}
    values = {p.name: read_tensor(p) for p in path.iterdir() if p.name not in skip}
    values.update({f"carry:{k}": v for k, v in np.load(path / "carry.npz").items()})
    return values


def test_a_run_killed_at_a_random_step_resumes_to_the_same_parameters(toy_corpus, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    steps = {"train.max_steps": STEPS}  # enough that the kill lands mid-run on a fast machine
    subprocess.run(train_command(*overrides(toy_corpus, whole, **steps)), cwd=ROOT, env=ENV, check=True,
                   capture_output=True)

    proc = subprocess.Popen(train_command(*overrides(toy_corpus, killed, **steps)), cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    manager = CheckpointManager(killed / "checkpoints")
    deadline = time.time() + 120
    while manager.latest() is None and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(random.Random(20261201).uniform(0.0, 0.3))  # seeded: a failure reproduces
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    latest = manager.latest()
    assert latest is not None, (f"no checkpoint appeared in {killed} within 120 s "
                                f"(the run's exit status: {proc.returncode})")
    interrupted_at = int(latest.name.split("-")[1])
    assert interrupted_at < STEPS, "the run finished before it could be killed"

    subprocess.run(train_command(*overrides(toy_corpus, killed, **steps), "--resume"), cwd=ROOT, env=ENV,
                   check=True, capture_output=True)
    a, b = final_variables(whole, STEPS), final_variables(killed, STEPS)
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=1e-6, err_msg=name)


KILL_IN_SECOND_SAVE = """
import os, signal, sys
import engine.variables as variables
from bilm.cli import train as main
original, calls = variables.save_variables, []
def save_then_die(directory, names, scope=None):
    calls.append(directory)
    names = list(names)
    if len(calls) == 2:  # the second checkpoint: write half of it, then die
        original(directory, names[: len(names) // 2], scope)
        os.kill(os.getpid(), signal.SIGKILL)
    original(directory, names, scope)
variables.save_variables = save_then_die
import engine.trainer
engine.trainer.save_variables = save_then_die
main(sys.argv[1:])
"""


def test_a_kill_inside_a_save_leaves_the_previous_checkpoint(toy_corpus, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", KILL_IN_SECOND_SAVE, "--config", "configs/elmo.yaml",
                           *overrides(toy_corpus, out)], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL
    checkpoints = out / "checkpoints"
    assert [p.name for p in CheckpointManager(checkpoints).complete()] == ["step-00000005"]
    assert (checkpoints / ".step-00000010.partial").is_dir()  # the half-written one, ignored
    resumed = subprocess.run(train_command(*overrides(toy_corpus, out, **{"train.max_steps": 12}), "--resume"),
                             cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout and "step-00000005 at step 5" in resumed.stdout
    assert [p.name for p in CheckpointManager(checkpoints).complete()][-1] == "step-00000012"
    assert not list(checkpoints.glob(".*.partial"))


@pytest.mark.parametrize("skip", [False, True])
def test_a_non_finite_loss_stops_the_run_or_is_skipped(toy_corpus, tmp_path, skip):
    out = tmp_path / "run"
    # Without clipping, a huge learning rate drives the logits to infinity within a few steps.
    args = overrides(toy_corpus, out, **{"optim.name": "sgd", "optim.learning_rate": 1e30, "optim.grad_clip": 0,
                                        "model.cell_clip": 0, "model.proj_clip": 0, "train.max_steps": 12,
                                        "train.skip_nonfinite_steps": skip})
    proc = subprocess.run(train_command(*args), cwd=ROOT, env=ENV, capture_output=True, text=True)
    if not skip:
        assert proc.returncode == 2
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("error: loss is") and "at step" in last and "last good checkpoint" in last
    else:
        assert proc.returncode == 0, proc.stderr
        assert "its gradients were zeroed (no update)" in proc.stdout
        for value in final_variables(out, 12).values():
            assert np.all(np.isfinite(value))


def test_a_damaged_newest_checkpoint_is_set_aside_and_the_run_resumes_from_the_one_before(toy_corpus, tmp_path):
    whole, damaged = tmp_path / "whole", tmp_path / "damaged"
    steps = {"train.max_steps": 15}
    for out in (whole, damaged):
        subprocess.run(train_command(*overrides(toy_corpus, out, **steps)), cwd=ROOT, env=ENV, check=True,
                       capture_output=True)
    # Bytes flipped in place, the size kept: what loaded silently before checkpoints had a manifest.
    target = damaged / "checkpoints" / "step-00000015" / "lstmp_1.w_0"
    data = bytearray(target.read_bytes())
    for i in range(len(data) - 400, len(data)):
        data[i] ^= 0xFF
    target.write_bytes(bytes(data))
    proc = subprocess.run(train_command(*overrides(toy_corpus, damaged, **steps), "--resume"), cwd=ROOT, env=ENV,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert ("note: step-00000015 is damaged (lstmp_1.w_0 has other bytes than were saved (CRC-32 mismatch)); "
            "set aside as step-00000015.damaged") in proc.stdout
    assert "resumed from" in proc.stdout and "step-00000010 at step 10" in proc.stdout
    assert (damaged / "checkpoints" / "step-00000015.damaged").is_dir()
    a, b = final_variables(whole, 15), final_variables(damaged, 15)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=1e-6, err_msg=name)

    # A checkpoint chosen by hand is checked too, and a damaged one is one line.
    chosen = damaged / "checkpoints" / "step-00000015.damaged"
    proc = subprocess.run(train_command(*overrides(toy_corpus, tmp_path / "other", **steps), "--resume-from",
                                        str(chosen)), cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (f"error: {chosen}: lstmp_1.w_0 has other bytes than were saved "
                                                     "(CRC-32 mismatch)")


def stop_after_some_steps(command: list[str], out: Path, seed: int, signum=signal.SIGTERM) -> subprocess.Popen:
    """Starts `command`, and once its log shows a step, sends `signum` to its process group a seeded random
    moment later (as a scheduler or `kill -TERM` does); returns the finished process."""
    proc = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    for line in proc.stdout:
        if line.startswith("step "):
            break
    time.sleep(random.Random(seed).uniform(0.0, 0.5))
    os.killpg(proc.pid, signum)
    proc.stdout_text = line + proc.stdout.read()
    proc.wait(timeout=120)
    return proc


def test_sigterm_saves_at_a_step_boundary_and_the_resumed_run_ends_bitwise_as_an_uninterrupted_one(toy_corpus,
                                                                                                  tmp_path):
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    steps = {"train.max_steps": STEPS, "train.save_every": 1000, "data.num_workers": 1}
    subprocess.run(train_command(*overrides(toy_corpus, whole, **steps)), cwd=ROOT, env=ENV, check=True,
                   capture_output=True)
    proc = stop_after_some_steps(train_command(*overrides(toy_corpus, stopped, **steps)), stopped, seed=20261205)
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr.read()
    (line,) = [x for x in proc.stdout_text.splitlines() if x.startswith("stopped by")]
    step = int(line.split("at step ")[1].split(";")[0])
    assert line == f"stopped by SIGTERM at step {step}; resume with --resume" and 0 < step < STEPS
    assert CheckpointManager(stopped / "checkpoints").latest().name == f"step-{step:08d}"
    assert "leaked" not in proc.stderr.read()  # the reader ended cleanly with its consumer

    subprocess.run(train_command(*overrides(toy_corpus, stopped, **steps), "--resume"), cwd=ROOT, env=ENV,
                   check=True, capture_output=True)
    a, b = final_variables(whole, STEPS), final_variables(stopped, STEPS)
    assert set(a) == set(b)
    for name in a:  # the carried LSTM state included
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_sigterm_stops_a_luke_fine_tuning_run_that_resumes_exactly(tmp_path):

    from helpers.classify import rows, write
    from helpers.luke import write_luke_model

    luke = write_luke_model(tmp_path / "luke", max_position_embeddings=80)
    train, dev = write(tmp_path / "train.tsv", rows(96, seed=1)), write(tmp_path / "dev.tsv", rows(8, seed=2))

    def command(out, *extra):
        items = {"data.train": train, "data.dev": dev, "data.max_seq_length": 40, "model.luke": luke,
                 "train.output_dir": out, "train.batch_size": 4, "train.max_steps": 60, "train.log_every": 1,
                 "train.save_every": 1000, "train.eval_every": 0, "optim.learning_rate": 3e-3}
        return [sys.executable, "-m", "engine", "--config", "configs/classify.yaml",
                *[a for k, v in items.items() for a in ("-o", f"{k}={v}")], *extra]

    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    subprocess.run(command(whole), cwd=ROOT, env=ENV, check=True, capture_output=True)
    proc = stop_after_some_steps(command(stopped), stopped, seed=7)
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr.read()
    assert "stopped by SIGTERM at step" in proc.stdout_text
    subprocess.run(command(stopped, "--resume"), cwd=ROOT, env=ENV, check=True, capture_output=True)
    a, b = (CheckpointManager(out / "checkpoints").latest() for out in (whole, stopped))
    assert a.name == b.name == "step-00000060"
    skip = {"trainer_state.json", "carry.npz", "manifest.json"}
    for path in a.iterdir():
        if path.name not in skip and not path.suffix:
            np.testing.assert_array_equal(read_tensor(path), read_tensor(b / path.name), err_msg=path.name)


FULL_DISK_AT_SECOND_SAVE = """
import errno, os, sys
import engine.variables as variables
from bilm.cli import train as main
from engine.command import run
original = variables.write_tensor
def write_tensor(path, array):  # the disk fills up while the second checkpoint is written
    if "step-00000010" in str(path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    original(path, array)
if __name__ == "__main__":
    variables.write_tensor = write_tensor
    run(main, sys.argv[1:])
"""


def test_a_full_disk_is_one_line_naming_what_is_intact(toy_corpus, tmp_path):
    out = tmp_path / "run"
    driver = tmp_path / "driver.py"
    driver.write_text(FULL_DISK_AT_SECOND_SAVE)
    proc = subprocess.run([sys.executable, str(driver), "--config", "configs/elmo.yaml", *overrides(toy_corpus, out)],
                          cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    checkpoints = out / "checkpoints"
    assert proc.stderr.strip().splitlines() == [
        f"error: cannot write {checkpoints}/step-00000010: No space left on device; the last complete checkpoint "
        f"is {checkpoints}/step-00000005 (resume from it with --resume once there is room)"]
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-00000005"]  # nothing partial left


def limit_file_size(size: int):
    """A `preexec_fn`: files of the process may not grow past `size` bytes (writes then fail with EFBIG
    instead of the default SIGXFSZ): a full disk without mounting one."""
    import resource

    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return apply


def test_a_dump_past_the_space_left_is_one_line_and_leaves_no_partial_file(toy_corpus, tmp_path):
    out = tmp_path / "run"
    subprocess.run(train_command(*overrides(toy_corpus, out, **{"train.max_steps": 4})), cwd=ROOT, env=ENV,
                   check=True, capture_output=True)
    text = tmp_path / "text.txt"
    text.write_text(Path(toy_corpus["dev"].replace("*.txt", "shard-0.txt")).read_text() * 30)
    output = tmp_path / "vectors" / "elmo.hdf5"
    proc = subprocess.run([sys.executable, "-m", "bilm", "dump", "--model", str(out / "model"), "--input", str(text),
                           "--output", str(output), "--backend", "paddle"], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, preexec_fn=limit_file_size(1 << 20))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (f"error: cannot write {output}: File too large; nothing of it "
                                                     "was left behind")
    assert list(output.parent.iterdir()) == []


FULL_DISK_AT_EXPORT = """
import errno, os, sys
import paddle
from bilm.cli import train as main
from engine.command import run
def save_inference_model(path_prefix, *args, **kwargs):  # the disk fills up while the run exports
    open(str(path_prefix) + ".json", "w").write("{")  # half a file first, as a real failure leaves
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path_prefix) + ".pdiparams")
if __name__ == "__main__":
    paddle.static.save_inference_model = save_inference_model
    run(main, sys.argv[1:])
"""


def test_a_full_disk_at_the_export_leaves_no_partial_export_and_resume_exports(toy_corpus, tmp_path):
    out = tmp_path / "run"
    driver = tmp_path / "driver.py"
    driver.write_text(FULL_DISK_AT_EXPORT)
    args = overrides(toy_corpus, out, **{"train.max_steps": 10})
    proc = subprocess.run([sys.executable, str(driver), "--config", "configs/elmo.yaml", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: cannot write the export in {out}: No space left on device; the run is complete in "
        f"{out}/checkpoints/step-00000010: make room and run again with --resume to export it")
    assert not {"inference", "model"} & {p.name for p in out.iterdir()} and not list(out.glob(".*"))  # nothing partial
    proc = subprocess.run(train_command(*args, "--resume"), cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (out / "inference" / "elmo.json").is_file() and (out / "model" / "model.json").is_file()
    assert f"exported inference program: {out}/inference/elmo.json" in proc.stdout
