"""The training graph: dropout placement, reproducible masks, and its loss and gradients against numpy."""

import numpy as np
import paddle
import pytest

from bilm.config import BiLMConfig
from bilm.lm import build_lm, zero_states
from engine.ops import SEED_FEED, step_seed
from reader.sampling import LogUniformSampler

from helpers.bilm import numpy_lstmp


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


def test_dropouts_made_by_different_builders_draw_different_masks(static_scope):
    """A task's dropout and one made elsewhere on the same seed feed (inside `bilm.elmo_encoder`, say)."""
    from engine.ops import StepDropout, seed_input

    main = paddle.static.Program()
    with paddle.static.program_guard(main, paddle.static.Program()):
        x = paddle.static.data("x", [64], "float32")
        seed = seed_input()
        ours, theirs = StepDropout(0.5, seed), StepDropout(0.5, seed)
        masks = [ours(x), theirs(x), ours(x)]
    exe = paddle.static.Executor(paddle.CPUPlace())
    a, b, c = exe.run(main, feed={"x": np.ones(64, np.float32), SEED_FEED: step_seed(0, 1, 0)}, fetch_list=masks)
    assert not np.array_equal(a, b) and not np.array_equal(b, c) and not np.array_equal(a, c)


def test_step_seeds_differ_across_steps_and_ranks():
    seeds = {int(step_seed(3, step, rank)[0]) for step in range(500) for rank in range(4)}
    assert len(seeds) == 2000
    assert all(0 <= s < 2**31 - 2**16 for s in seeds)


# -- the training loss and its gradients against a numpy biLM ---------------------------

V, E, H, L, B, T = 23, 4, 6, 2, 3, 5


def numpy_bilm_loss(params: dict, feed: dict, neg_ids=None, num_tries=None) -> float:
    """The fluid biLM's training loss in float64: per direction its own LSTMP stack (residual from the
    second layer on) over its own inputs and targets, one shared softmax, the mean over 2·B·T tokens.
    With `neg_ids`: the sampled softmax (target first, accidental hits removed, logits minus log Q)."""
    hidden, targets = [], []
    for d, (inp, tgt), offset in (("fw", ("token_ids", "next_token_ids"), 0),
                                  ("bw", ("token_ids_reverse", "next_token_ids_reverse"), L)):
        x = params["embedding_para"][feed[inp]]
        for i in range(L):
            k = offset + i
            weights = [params[name] for name in (f"{d}_layer{i + 1}_gate_w", f"lstmp_{k}.w_0", f"lstmp_{k}.w_1",
                                                 f"lstmp_{k}.b_0")]
            r, _, _ = numpy_lstmp(x, feed["init_hidden"][k].astype(np.float64),
                                  feed["init_cell"][k].astype(np.float64), *weights, 3.0, 3.0)
            x = r + x if i > 0 else r
        hidden.append(x.reshape(B * T, E))
        targets.append(feed[tgt].reshape(B * T))
    h, y = np.concatenate(hidden), np.concatenate(targets)
    logits = h @ params["softmax_weight"].T + params["softmax_bias"]
    if neg_ids is None:
        top = logits.max(1, keepdims=True)
        return float((np.log(np.exp(logits - top).sum(1)) + top[:, 0] - logits[np.arange(len(y)), y]).mean())
    log_q = np.log(LogUniformSampler(V, len(neg_ids)).expected_count(np.arange(V), num_tries))
    nll = []
    for row, target in zip(logits - log_q, y):
        z = np.concatenate([[row[target]], row[[k for k in neg_ids if k != target]]])
        nll.append(np.log(np.exp(z - z.max()).sum()) + z.max() - z[0])
    return float(np.mean(nll))


@pytest.mark.parametrize("softmax", ["full", "sampled"])
def test_the_training_loss_and_gradients_equal_a_numpy_bilm(static_scope, softmax):
    """What training minimizes, through the same gradient path (row gathers, recorded products) as
    `engine.step`: loss to 1e-6, every parameter's gradient to central differences of the reference."""
    from engine.optim import densify
    from engine.step import backward

    cfg = BiLMConfig(vocab_size=V, embed_size=E, hidden_size=H, num_layers=L, softmax=softmax, num_samples=7,
                     dropout=0.0)
    main, startup = paddle.static.Program(), paddle.static.Program()
    startup.random_seed = 3
    with paddle.static.program_guard(main, startup):
        graph = build_lm(cfg, B, T, training=True, bos_id=0, eos_id=1)
        pairs = densify(backward(main, graph.loss, graph.gradient_sources))
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    rng = np.random.default_rng(0)
    params = {p.name: rng.normal(0, 0.5, p.shape) for p in main.global_block().all_parameters()}
    for name, value in params.items():
        static_scope.find_var(name).get_tensor().set(value.astype(np.float32), paddle.CPUPlace())
    # One stream of words read both ways, as the reader pairs them (ids ≥ 2: no sentence boundary resets).
    words = rng.integers(2, V, (B, T + 1))
    reverse = words[:, ::-1]
    feed = {"token_ids": words[:, :-1], "next_token_ids": words[:, 1:], "token_ids_reverse": reverse[:, :-1].copy(),
            "next_token_ids_reverse": reverse[:, 1:].copy(), SEED_FEED: step_seed(0, 0, 0),
            "init_hidden": rng.normal(0, 0.3, (2 * L, B, E)).astype(np.float32),
            "init_cell": rng.normal(0, 0.3, (2 * L, B, H)).astype(np.float32)}
    sampled = {}
    if softmax == "sampled":
        sampled = {"neg_ids": np.array([0, 2, 5, 9, 11, 17, 22]), "num_tries": 13}
        feed.update({"neg_ids": sampled["neg_ids"], "num_tries": np.array([13], np.float32)})
    loss, *grads = exe.run(main, feed=feed, fetch_list=[graph.loss] + [g for _, g in pairs])
    reference = lambda p: numpy_bilm_loss(p, feed, **sampled)  # noqa: E731
    assert float(loss) == pytest.approx(reference(params), abs=1e-6)
    assert {p.name for p, _ in pairs} == set(params)  # every parameter trains
    for (param, _), grad in zip(pairs, grads):
        for index in zip(*(rng.integers(0, n, 4) for n in param.shape)):
            shifted = {k: v.copy() for k, v in params.items()}
            shifted[param.name][index] += 1e-5
            up = reference(shifted)
            shifted[param.name][index] -= 2e-5
            numeric = (up - reference(shifted)) / 2e-5
            assert grad[index] == pytest.approx(numeric, rel=2e-3, abs=2e-6), (param.name, index)
