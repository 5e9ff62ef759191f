"""The training graph: dropout placement and reproducible masks."""

import numpy as np
import paddle

from bilm.config import BiLMConfig
from bilm.lm import build_lm, zero_states
from engine.ops import SEED_FEED, step_seed


def _training_program(dropout):
    cfg = BiLMConfig(vocab_size=20, embed_size=4, hidden_size=6, num_layers=2, softmax="full", dropout=dropout)
    main, startup = paddle.static.Program(), paddle.static.Program()
    startup.random_seed = 1
    with paddle.static.program_guard(main, startup):
        graph = build_lm(cfg, 2, 5, training=True, bos_id=0, eos_id=1)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    rng = np.random.default_rng(0)
    feed = {n: rng.integers(2, 20, (2, 5)) for n in
            ("token_ids", "next_token_ids", "token_ids_reverse", "next_token_ids_reverse")}
    feed.update(zero_states(cfg, 2))

    def loss(seed):
        return float(exe.run(main, feed={**feed, SEED_FEED: seed}, fetch_list=[graph.loss])[0])

    return main, loss


def test_three_dropouts_per_layer_and_direction_as_the_fluid_release(static_scope):
    main, _ = _training_program(0.1)
    ops = [op.name() for op in main.global_block().ops]
    # Input a = drop(x), a second drop(a) into the LSTMP, and the output.
    assert ops.count("pd_op.dropout") == 3 * 2 * 2


def test_masks_are_a_function_of_the_fed_seed(static_scope):
    _, loss = _training_program(0.5)
    a, b = step_seed(0, 10, 0), step_seed(0, 11, 0)
    assert loss(a) == loss(a)
    assert loss(a) != loss(b)
    _, loss_without = _training_program(0.0)
    assert loss_without(a) == loss_without(b)


def test_step_seeds_differ_across_steps_and_ranks():
    seeds = {int(step_seed(3, step, rank)[0]) for step in range(500) for rank in range(4)}
    assert len(seeds) == 2000
    assert all(0 <= s < 2**31 - 2**16 for s in seeds)
