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


# -- integrity ---------------------------------------------------------------------


def test_the_manifest_names_every_file_and_verify_finds_what_changed(tmp_path):
    from engine.checkpoint import MANIFEST_FILE, verify

    manager = CheckpointManager(tmp_path, keep=3)
    path = _save(manager, 5)
    listed = json.loads((path / MANIFEST_FILE).read_text())["files"]
    assert sorted(listed) == ["carry.npz", "w"] and verify(path) == []

    data = bytearray((path / "w").read_bytes())
    data[-4:] = b"\x01\x02\x03\x04"  # the same size, other bytes (what a bad disk or copy leaves)
    (path / "w").write_bytes(bytes(data))
    assert verify(path) == ["w has other bytes than were saved (CRC-32 mismatch)"]
    (path / "w").write_bytes(bytes(data[:-4]))
    assert verify(path) == [f"w has {len(data) - 4:,} bytes, the manifest {len(data):,}"]
    (path / "carry.npz").unlink()
    assert verify(path)[0] == "carry.npz is missing"

    older = _save(manager, 6)
    (older / MANIFEST_FILE).unlink()  # written before checkpoints had a manifest: taken as it is
    assert verify(older) == []


def test_a_damaged_newest_checkpoint_is_set_aside_for_the_newest_intact_one(tmp_path):
    manager = CheckpointManager(tmp_path, keep=3)
    for step in (10, 20, 30):
        _save(manager, step)
    with open(tmp_path / "step-00000030" / "w", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\xff\xff\xff\xff")
    assert manager.intact(set_aside=False)[0].name == "step-00000020"  # another rank: looks, changes nothing
    assert (tmp_path / "step-00000030").is_dir()
    start, notes = manager.intact()
    assert start.name == "step-00000020"
    assert notes == ["step-00000030 is damaged (w has other bytes than were saved (CRC-32 mismatch)); "
                     "set aside as step-00000030.damaged"]
    assert [p.name for p in manager.complete()] == ["step-00000010", "step-00000020"]
    assert (tmp_path / "step-00000030.damaged" / "w").is_file()  # kept for inspection


def test_engine_verify_checks_a_run_by_hand(tmp_path, capsys):
    from engine.verify import main

    manager = CheckpointManager(tmp_path / "run" / "checkpoints", keep=3)
    for step in (1, 2):
        _save(manager, step)
    assert main([str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and all(": intact (4 files, " in line for line in out)
    size = (manager.latest() / "w").stat().st_size
    (manager.latest() / "w").write_bytes(b"")
    assert main([str(manager.latest())]) == 1
    assert capsys.readouterr().out == f"{manager.latest()}: damaged: w has 0 bytes, the manifest {size}\n"
