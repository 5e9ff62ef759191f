"""Truncated BPTT: state carried between batches equals one long unroll."""

import numpy as np
import paddle

from bilm.config import BiLMConfig
from bilm.lm import INIT_CELL, INIT_HIDDEN, build_lm

B, T, V, BOS, EOS = 3, 4, 23, 0, 1
NAMES = ["token_ids", "next_token_ids", "token_ids_reverse", "next_token_ids_reverse"]
ZEROS = {INIT_HIDDEN: np.zeros((4, B, 6), np.float32), INIT_CELL: np.zeros((4, B, 10), np.float32)}


def _programs(state_reset: str, steps=(T,)):
    """Eval-mode LM programs sharing parameters; returns run(steps, feed) → (nll fw, nll bw, h, c)."""
    cfg = BiLMConfig(vocab_size=V, embed_size=6, hidden_size=10, num_layers=2, softmax="full",
                     cell_clip=0.5, proj_clip=0.5, dropout=0.0, state_reset=state_reset)
    programs = {}
    for n in steps:
        main, startup = paddle.static.Program(), paddle.static.Program()
        startup.random_seed = 5
        with paddle.static.program_guard(main, startup):
            programs[n] = (main, startup, build_lm(cfg, B, n, training=False, bos_id=BOS, eos_id=EOS))
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(programs[steps[0]][1])  # parameters are shared by name through the scope

    def run(n, feed):
        main, _, g = programs[n]
        return exe.run(main, feed=feed, fetch_list=[g.token_nll["fw"], g.token_nll["bw"], g.last_hidden, g.last_cell])

    return run


def test_two_windows_with_carried_state_equal_one_long_window(static_scope):
    run = _programs("stream", steps=(T, 2 * T))
    rng = np.random.default_rng(0)
    long_ids = {n: rng.integers(3, V, (B, 2 * T)) for n in NAMES}

    full = run(2 * T, {**long_ids, **ZEROS})
    first = run(T, {**{n: v[:, :T] for n, v in long_ids.items()}, **ZEROS})
    second = run(T, {**{n: v[:, T:] for n, v in long_ids.items()},
                     INIT_HIDDEN: first[2], INIT_CELL: first[3]})
    np.testing.assert_allclose(np.concatenate([first[0], second[0]], 1), full[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([first[1], second[1]], 1), full[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(second[2], full[2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(second[3], full[3], rtol=1e-5, atol=1e-6)
    # And the carried state matters: restarting from zeros gives other losses.
    restart = run(T, {**{n: v[:, T:] for n, v in long_ids.items()}, **ZEROS})
    assert np.abs(restart[0] - second[0]).max() > 1e-4


def test_sentence_reset_makes_a_sentence_independent_of_what_came_before(static_scope):
    run = _programs("sentence")
    rng = np.random.default_rng(1)
    ids = {n: rng.integers(3, V, (B, T)) for n in NAMES}
    # A sentence starts at step 2 of every row in both directions.
    ids["token_ids"][:, 2] = BOS
    ids["token_ids_reverse"][:, 2] = EOS
    warm = {INIT_HIDDEN: rng.normal(size=ZEROS[INIT_HIDDEN].shape).astype(np.float32),
            INIT_CELL: rng.normal(size=ZEROS[INIT_CELL].shape).astype(np.float32)}
    from_zero, from_warm = run(T, {**ids, **ZEROS}), run(T, {**ids, **warm})
    for k in (0, 1):  # before the boundary the carried state matters, after it nothing does
        assert np.abs(from_zero[k][:, :2] - from_warm[k][:, :2]).max() > 1e-4
        np.testing.assert_allclose(from_zero[k][:, 2:], from_warm[k][:, 2:], rtol=1e-6, atol=1e-6)
