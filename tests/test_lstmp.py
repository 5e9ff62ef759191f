"""The rebuilt LSTMP against a numpy transcription of the fluid op's formulas."""

import numpy as np
import paddle
import pytest

from bilm.model import LSTMP, LSTMPWeights, lstmp_sequence

from helpers.bilm import numpy_lstmp


@pytest.mark.parametrize("dynamic", [False, True], ids=["unrolled", "while_loop"])
@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
def test_lstmp_matches_numpy_with_clipping_active(static_scope, dynamic, masked):
    rng = np.random.default_rng(0)
    B, T, D, H, P = 3, 6, 5, 7, 4
    cell_clip, proj_clip = 0.4, 0.3
    # Large weights so both clips engage.
    arrays = {
        "gate_w": rng.normal(0, 1.5, (D, 4 * H)), "weight": rng.normal(0, 1.5, (P, 4 * H)),
        "proj": rng.normal(0, 1.5, (H, P)), "bias": rng.normal(0, 0.5, (1, 4 * H)),
    }
    x = rng.normal(size=(B, T, D))
    r0, c0 = rng.normal(0, 0.2, (B, P)), rng.normal(0, 0.2, (B, H))
    lengths = np.array([6, 3, 1])
    mask = (np.arange(T)[None] < lengths[:, None]).astype(np.float64) if masked else None

    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        xv = paddle.static.data("x", [B, -1 if dynamic else T, D], "float32")
        rv = paddle.static.data("r0", [B, P], "float32")
        cv = paddle.static.data("c0", [B, H], "float32")
        mv = paddle.static.data("mask", [B, -1 if dynamic else T], "float32") if masked else None
        w = LSTMPWeights(**{k: paddle.static.create_parameter(list(v.shape), "float32",
                                                              attr=paddle.ParamAttr(name=k))
                            for k, v in arrays.items()})
        out, r_last, c_last = lstmp_sequence(LSTMP(w, cell_clip, proj_clip), xv, rv, cv, mv)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    for k, v in arrays.items():
        static_scope.find_var(k).get_tensor().set(v.astype(np.float32), paddle.CPUPlace())
    feed = {"x": x.astype(np.float32), "r0": r0.astype(np.float32), "c0": c0.astype(np.float32)}
    if masked:
        feed["mask"] = mask.astype(np.float32)
    got = exe.run(main, feed=feed, fetch_list=[out, r_last, c_last])
    want = numpy_lstmp(x, r0, c0, **arrays, cell_clip=cell_clip, proj_clip=proj_clip, mask=mask)
    clipped_r = np.isclose(np.abs(want[0]), proj_clip).mean()
    clipped_c = np.isclose(np.abs(want[2]), cell_clip).mean()
    assert clipped_r > 0.1 and clipped_c > 0.1, "the test must exercise both clips"
    for g, w_ in zip(got, want):
        np.testing.assert_allclose(g, w_, atol=1e-5, rtol=1e-5)
