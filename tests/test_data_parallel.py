"""Data parallelism: 2 ranks launched with paddle.distributed.launch on CPU (gloo)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.corpus import write_toy_corpus

pytestmark = pytest.mark.slow  # multi-process launches and subprocess runs

ROOT = Path(__file__).resolve().parents[1]
ENV = {"GLOG_minloglevel": "2", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}

# Trains through the real entry point, then dumps this rank's parameters.
DRIVER = """
import os, sys
import numpy as np
import paddle
from bilm.cli import train as main


def dump_parameters(out):
    scope = paddle.static.global_scope()
    names = [n for n in scope.local_var_names() if n.startswith(("lstmp_", "fw_", "bw_", "embedding", "softmax"))]
    rank = os.environ.get("PADDLE_TRAINER_ID", "0")
    values = {n: np.array(scope.find_var(n).get_tensor()) for n in names}
    np.savez(os.path.join(out, f"rank{rank}.npz"), **values)


if __name__ == "__main__":  # the reader's worker processes import this file too
    if os.environ.get("NO_ALLREDUCE"):
        import engine.step
        engine.step.allreduce = lambda pairs, world: pairs
    main(sys.argv[2:])
    dump_parameters(sys.argv[1])
"""


def overrides(corpus: dict, out: Path, batch: int, steps: int, **extra) -> list[str]:
    items = {"data.source": "files", "data.train": corpus["train"], "data.dev": corpus["dev"],
             "data.vocab": corpus["vocab"], "data.num_steps": 5, "data.num_workers": 0,
             "model.embed_size": 8, "model.hidden_size": 16, "model.softmax": "sampled",
             "model.num_samples": 8, "model.dropout": 0.0,
             "train.output_dir": str(out), "train.batch_size": batch, "train.max_steps": steps,
             "train.log_every": 2, "train.save_every": 3, "train.eval_every": 0, **extra}
    return [a for k, v in items.items() for a in ("-o", f"{k}={v}")]


def run(tmp_path: Path, out: Path, args: list[str], ranks: int, resume=False, env=None):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(driver), str(out), "--config", "configs/elmo.yaml", *args]
    if resume:
        command.append("--resume")
    if ranks > 1:
        command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(ranks),
                   "--log_dir", str(out / "launch"), *command]
    proc = subprocess.run(command, cwd=ROOT, env={**ENV, **(env or {})}, capture_output=True, text=True,
                          timeout=600)
    logs = "".join(p.read_text() for p in sorted((out / "launch").glob("workerlog.*"))) if ranks > 1 else ""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + logs[-3000:]
    return {int(p.stem[4:]): dict(np.load(p)) for p in out.glob("rank*.npz")}, proc.stdout + logs


def assert_same(a: dict, b: dict, atol=1e-6):
    # rtol: one process updates the tables row-wise, two ranks densely; the
    # same arithmetic in another order differs in the last bits.
    assert set(a) == set(b) and len(a) > 10
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=atol, err_msg=name)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_toy_corpus(tmp_path_factory.mktemp("corpus"))


def test_two_ranks_equal_one_process_on_the_combined_batch(corpus, tmp_path):
    two, log = run(tmp_path, tmp_path / "two", overrides(corpus, tmp_path / "two", batch=3, steps=6), ranks=2)
    one, _ = run(tmp_path, tmp_path / "one", overrides(corpus, tmp_path / "one", batch=6, steps=6), ranks=1)
    assert set(two) == {0, 1}
    assert_same(two[0], two[1])
    assert_same(two[0], one[0])
    # Global tokens/s: rank 0's log counts both ranks' tokens.
    assert "tok/s" in log


def test_without_the_all_reduce_the_ranks_diverge(corpus, tmp_path):
    two, _ = run(tmp_path, tmp_path / "two", overrides(corpus, tmp_path / "two", batch=3, steps=4), ranks=2,
                 env={"NO_ALLREDUCE": "1"})
    differences = [np.abs(two[0][n] - two[1][n]).max() for n in two[0]]
    assert max(differences) > 1e-3


def test_a_checkpoint_from_two_ranks_resumes_in_one_process(corpus, tmp_path):
    first = overrides(corpus, tmp_path / "run", batch=3, steps=3)
    run(tmp_path, tmp_path / "run", first, ranks=2)
    # The same global batch in one process: the carried rows map one to one.
    resumed, log = run(tmp_path, tmp_path / "run", overrides(corpus, tmp_path / "run", batch=6, steps=6),
                       ranks=1, resume=True)
    whole, _ = run(tmp_path, tmp_path / "whole", overrides(corpus, tmp_path / "whole", batch=6, steps=6), ranks=1)
    assert "resumed from" in log and "restarts from zero" not in log
    assert_same(resumed[0], whole[0])


def test_two_nodes_on_localhost_equal_one_process(corpus, tmp_path):
    """Two launchers, one rank each, joined through --master as two machines would be (run.sh
    --nnodes 2 --master HOST:PORT runs this launch command)."""
    import socket

    with socket.socket() as s:  # a free port for the master
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "nodes"
    out.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    args = overrides(corpus, out, batch=3, steps=6)
    nodes = [subprocess.Popen([sys.executable, "-m", "paddle.distributed.launch", "--master", f"127.0.0.1:{port}",
                               "--nnodes", "2", "--nproc_per_node", "1", "--log_dir", str(out / f"launch{k}"),
                               sys.executable, str(driver), str(out), "--config", "configs/elmo.yaml", *args],
                              cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for k in range(2)]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert all(node.returncode == 0 for node in nodes), "\n".join(o[-2000:] for o in outputs)
    two = {int(p.stem[4:]): dict(np.load(p)) for p in out.glob("rank*.npz")}
    one, _ = run(tmp_path, tmp_path / "one", overrides(corpus, tmp_path / "one", batch=6, steps=6), ranks=1)
    assert set(two) == {0, 1}
    assert_same(two[0], two[1])
    assert_same(two[0], one[0])


def test_run_sh_needs_a_master_for_several_nodes():
    proc = subprocess.run(["sh", "run.sh", "elmo", "--nnodes", "2"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "--nnodes 2 needs --master HOST:PORT" in proc.stderr


def test_sigterm_to_the_launcher_stops_both_ranks_at_the_same_step_and_they_resume_exactly(corpus, tmp_path):
    import os
    import signal
    import time

    steps, out = 400, tmp_path / "run"
    args = overrides(corpus, out, batch=3, steps=steps, **{"train.save_every": 1000, "train.log_every": 1})
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    out.mkdir(parents=True)
    launch = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
              str(out / "launch"), sys.executable, str(driver), str(out), "--config", "configs/elmo.yaml", *args]
    proc = subprocess.Popen(launch, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline, log0 = time.time() + 120, out / "launch" / "workerlog.0"
    while not (log0.is_file() and "step 3/" in log0.read_text(errors="replace")):
        assert time.time() < deadline and proc.poll() is None, proc.stdout.read()
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGTERM)  # what a scheduler does to the job's process group
    proc.wait(timeout=120)
    assert proc.returncode == signal.SIGTERM  # the launcher's own status: the signal's number
    logs = [(out / "launch" / f"workerlog.{r}").read_text() for r in (0, 1)]
    (line,) = [x for x in logs[0].splitlines() if x.startswith("stopped by")]
    step = int(line.split("at step ")[1].split(";")[0])
    assert line == f"stopped by SIGTERM at step {step}; resume with --resume" and step < steps, logs[0][-2000:]
    assert not list(out.glob("rank*.npz"))  # neither rank went on to the end
    from engine.checkpoint import CheckpointManager

    assert CheckpointManager(out / "checkpoints").latest().name == f"step-{step:08d}"

    resumed, _ = run(tmp_path, out, args, ranks=2, resume=True)
    whole, _ = run(tmp_path, tmp_path / "whole", overrides(corpus, tmp_path / "whole", batch=3, steps=steps,
                                                           **{"train.save_every": 1000}), ranks=2)
    for rank in (0, 1):  # the same ranks doing the same arithmetic: bit for bit
        assert set(resumed[rank]) == set(whole[rank]) and len(whole[rank]) > 10
        for name in whole[rank]:
            np.testing.assert_array_equal(resumed[rank][name], whole[rank][name], err_msg=name)
