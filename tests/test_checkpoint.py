"""Checkpoint directories: atomic writes, pruning, and what counts as complete."""

import json

import numpy as np
import pytest

from engine.checkpoint import CheckpointManager, read_state
from engine.errors import CheckpointError
from engine.variables import write_tensor


def _save(manager, step, fail=False):
    def write_files(directory):
        write_tensor(directory / "w", np.full(3, step, np.float32))
        if fail:
            raise KeyboardInterrupt  # killed in the middle of a save

    return manager.save(step, write_files, {"step": step}, {"init_cell": np.ones(2, np.float32)})


def test_an_interrupted_save_leaves_the_previous_checkpoint_latest(tmp_path):
    manager = CheckpointManager(tmp_path, keep=3)
    _save(manager, 10)
    with pytest.raises(KeyboardInterrupt):
        _save(manager, 20, fail=True)
    assert manager.latest().name == "step-00000010"
    assert not list(tmp_path.glob(".*partial"))


def test_a_directory_without_its_state_file_is_not_a_checkpoint(tmp_path):
    manager = CheckpointManager(tmp_path, keep=3)
    _save(manager, 10)
    (tmp_path / "step-00000020").mkdir()  # e.g. copied by hand, half
    (tmp_path / ".step-00000030.partial").mkdir()
    assert manager.latest().name == "step-00000010"


def test_only_the_last_checkpoints_are_kept(tmp_path):
    manager = CheckpointManager(tmp_path, keep=2)
    for step in (1, 2, 3, 4):
        _save(manager, step)
    assert [p.name for p in manager.complete()] == ["step-00000003", "step-00000004"]
    state, carry = read_state(manager.latest())
    assert state == {"step": 4} and carry["init_cell"].tolist() == [1.0, 1.0]


def test_saving_the_same_step_again_replaces_it(tmp_path):
    manager = CheckpointManager(tmp_path, keep=2)
    _save(manager, 5)
    path = _save(manager, 5)
    assert json.loads((path / "trainer_state.json").read_text()) == {"step": 5}


def test_corrupt_state_files_are_named(tmp_path):
    manager = CheckpointManager(tmp_path, keep=2)
    path = _save(manager, 5)
    (path / "carry.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="carry.npz: unreadable"):
        read_state(path)
    (path / "trainer_state.json").write_text("{")
    with pytest.raises(CheckpointError, match="unreadable trainer_state.json"):
        read_state(path)
