import numpy as np
import paddle
import pytest

from engine.errors import CheckpointError
from engine.variables import read_tensor, write_tensor


@pytest.mark.parametrize("array", [
    np.arange(15, dtype=np.float32).reshape(3, 5),
    np.arange(7, dtype=np.int64),
    np.float32(0.25).reshape(()),
    np.ones((2, 3, 4), np.float64),
])
def test_round_trip(tmp_path, array):
    write_tensor(tmp_path / "v", array)
    back = read_tensor(tmp_path / "v")
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def _program_with(names_shapes):
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        params = [paddle.static.create_parameter(list(shape), "float32", attr=paddle.ParamAttr(name=name))
                  for name, shape in names_shapes]
    return main, startup, params


def test_paddle_save_vars_and_ours_are_the_same_bytes(tmp_path, static_scope):
    main, startup, params = _program_with([("lstmp_0.w_0", (3, 5)), ("softmax_bias", (7,))])
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    paddle.static.save_vars(exe, str(tmp_path / "paddle"), main, vars=params)
    for name in ("lstmp_0.w_0", "softmax_bias"):
        value = read_tensor(tmp_path / "paddle" / name)
        np.testing.assert_array_equal(value, np.array(static_scope.find_var(name).get_tensor()))
        write_tensor(tmp_path / name, value)
        assert (tmp_path / name).read_bytes() == (tmp_path / "paddle" / name).read_bytes()


def test_paddle_load_vars_reads_our_files(tmp_path, static_scope):
    main, startup, params = _program_with([("embedding_para", (4, 2))])
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    value = np.arange(8, dtype=np.float32).reshape(4, 2)
    write_tensor(tmp_path / "embedding_para", value)
    paddle.static.load_vars(exe, str(tmp_path), main, vars=params)
    np.testing.assert_array_equal(np.array(static_scope.find_var("embedding_para").get_tensor()), value)


def test_truncated_file_is_reported(tmp_path):
    write_tensor(tmp_path / "v", np.ones((10, 10), np.float32))
    data = (tmp_path / "v").read_bytes()
    (tmp_path / "v").write_bytes(data[:-8])
    with pytest.raises(CheckpointError, match=r"truncated or corrupt.*\[10, 10\]"):
        read_tensor(tmp_path / "v")
    (tmp_path / "w").write_bytes(data[:10])
    with pytest.raises(CheckpointError, match="truncated"):
        read_tensor(tmp_path / "w")


def test_other_files_are_not_taken_for_tensors(tmp_path):
    (tmp_path / "v").write_text('{"not": "a tensor"}' * 10)
    with pytest.raises(CheckpointError, match="not a Paddle tensor file"):
        read_tensor(tmp_path / "v")
