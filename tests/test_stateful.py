"""Truncated BPTT: state carried between batches equals one long unroll."""

import numpy as np
import paddle

from bilm.config import BiLMConfig
from bilm.lm import INIT_CELL, INIT_HIDDEN, build_lm


def test_two_windows_with_carried_state_equal_one_long_window(static_scope):
    cfg = BiLMConfig(vocab_size=23, embed_size=6, hidden_size=10, num_layers=2, softmax="full",
                     cell_clip=0.5, proj_clip=0.5, dropout=0.0)
    B, T = 3, 4
    programs = {}
    for steps in (T, 2 * T):
        main, startup = paddle.static.Program(), paddle.static.Program()
        startup.random_seed = 5
        with paddle.static.program_guard(main, startup):
            programs[steps] = (main, startup, build_lm(cfg, B, steps, training=False))
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(programs[T][1])  # parameters are shared by name through the scope

    rng = np.random.default_rng(0)
    names = ["token_ids", "next_token_ids", "token_ids_reverse", "next_token_ids_reverse"]
    long_ids = {n: rng.integers(0, cfg.vocab_size, (B, 2 * T)) for n in names}
    zeros = {INIT_HIDDEN: np.zeros((4, B, 6), np.float32), INIT_CELL: np.zeros((4, B, 10), np.float32)}

    def run(steps, feed):
        g = programs[steps][2]
        return exe.run(programs[steps][0], feed=feed,
                       fetch_list=[g.token_nll["fw"], g.token_nll["bw"], g.last_hidden, g.last_cell])

    full = run(2 * T, {**long_ids, **zeros})
    first = run(T, {**{n: v[:, :T] for n, v in long_ids.items()}, **zeros})
    second = run(T, {**{n: v[:, T:] for n, v in long_ids.items()},
                     INIT_HIDDEN: first[2], INIT_CELL: first[3]})
    np.testing.assert_allclose(np.concatenate([first[0], second[0]], 1), full[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([first[1], second[1]], 1), full[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(second[2], full[2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(second[3], full[3], rtol=1e-5, atol=1e-6)
    # And the carried state matters: restarting from zeros gives other losses.
    restart = run(T, {**{n: v[:, T:] for n, v in long_ids.items()}, **zeros})
    assert np.abs(restart[0] - second[0]).max() > 1e-4
