import numpy as np
import paddle
import pytest

from bilm.lm import full_softmax_loss, sampled_softmax_loss
from reader.sampling import LogUniformSampler


def _losses(V, P, N, neg_ids, num_tries, seed=0):
    rng = np.random.default_rng(seed)
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        h = paddle.static.data("h", [N, P], "float32")
        y = paddle.static.data("y", [N], "int64")
        neg = paddle.static.data("neg", [len(neg_ids)], "int64")
        tries = paddle.static.data("tries", [1], "float32")
        w = paddle.static.create_parameter([V, P], "float32", attr=paddle.ParamAttr(name="sw"))
        b = paddle.static.create_parameter([V], "float32", attr=paddle.ParamAttr(name="sb"))
        full = full_softmax_loss(h, y, w, b)
        sampled = sampled_softmax_loss(h, y, w, b, neg, tries, V)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    scope = paddle.static.global_scope()
    scope.find_var("sb").get_tensor().set(rng.normal(size=V).astype(np.float32), paddle.CPUPlace())
    feed = {"h": rng.normal(size=(N, P)).astype(np.float32), "y": rng.integers(0, V, N),
            "neg": np.asarray(neg_ids, np.int64), "tries": np.array([num_tries], np.float32)}
    full_v, sampled_v = exe.run(main, feed=feed, fetch_list=[full, sampled])
    weight = np.array(scope.find_var("sw").get_tensor())
    bias = np.array(scope.find_var("sb").get_tensor())
    return full_v, sampled_v, feed["h"] @ weight.T + bias, feed["y"]


def test_sampling_every_class_equals_full_softmax(static_scope):
    V = 50
    # Every class sampled, and so many draws that each expected count is 1:
    # the log-Q terms vanish and the target's own sample is an accidental hit.
    full, sampled, _, _ = _losses(V, P=8, N=12, neg_ids=np.random.default_rng(1).permutation(V), num_tries=1e9)
    np.testing.assert_allclose(sampled, full, rtol=1e-5, atol=1e-5)


def test_log_q_correction_matches_the_sampler(static_scope):
    V, tries = 40, 57
    neg = np.array([0, 3, 7, 12, 25, 39])
    sampler_q = LogUniformSampler(V, len(neg)).expected_count
    _, sampled, logits, targets = _losses(V, P=4, N=32, neg_ids=neg, num_tries=tries, seed=5)
    want = []
    for row, y in zip(logits, targets):
        others = [k for k in neg if k != y]
        z = np.concatenate([[row[y] - np.log(sampler_q(y, tries))],
                            row[others] - np.log(sampler_q(np.array(others), tries))])
        want.append(np.log(np.exp(z - z.max()).sum()) + z.max() - z[0])
    np.testing.assert_allclose(sampled, want, rtol=1e-4, atol=1e-5)


def test_accidental_hits_are_removed(static_scope):
    V = 30
    neg = np.arange(10)
    _, sampled, logits, targets = _losses(V, P=4, N=64, neg_ids=neg, num_tries=1e9, seed=3)
    # Expected counts are 1 (log Q = 0): the loss is a softmax over the target
    # and the samples other than the target.
    want = []
    for row, y in zip(logits, targets):
        others = [k for k in neg if k != y]
        z = np.concatenate([[row[y]], row[others]])
        want.append(np.log(np.exp(z - z.max()).sum()) + z.max() - row[y])
    assert (targets < 10).sum() > 5, "some targets must be among the samples"
    np.testing.assert_allclose(sampled, want, rtol=1e-5, atol=1e-5)


def test_sampler_draws_distinct_ids_and_follows_log_uniform():
    V, S = 1000, 50
    sampler = LogUniformSampler(V, S)
    rng = np.random.default_rng(0)
    counts = np.zeros(V)
    tries_total = 0
    for _ in range(400):
        ids, tries = sampler.draw(rng)
        assert len(ids) == S == len(np.unique(ids)) and ids.min() >= 0 and ids.max() < V
        assert tries >= S
        counts[ids] += 1
        tries_total += tries
    # A sampled id's inclusion frequency must match its expected count, which
    # for unique sampling is 1 - (1 - p)^tries (within sampling noise).
    expected = sampler.expected_count(np.arange(V), tries_total / 400)
    for lo, hi in [(0, 5), (5, 50), (50, 200), (200, 1000)]:
        got, want = counts[lo:hi].sum() / 400, expected[lo:hi].sum()
        assert abs(got - want) / want < 0.1, (lo, hi, got, want)


def test_single_draws_follow_log_uniform():
    V = 1000
    sampler = LogUniformSampler(V, 1)
    rng = np.random.default_rng(1)
    draws = np.array([sampler.draw(rng)[0][0] for _ in range(20_000)])
    freq = np.bincount(draws, minlength=V) / len(draws)
    p = sampler.probability(np.arange(V))
    for lo, hi in [(0, 1), (1, 3), (3, 10), (10, 100), (100, 1000)]:
        assert abs(freq[lo:hi].sum() - p[lo:hi].sum()) < 0.015, (lo, hi)


def test_sampler_is_reproducible_from_its_seed():
    sampler = LogUniformSampler(500, 40)
    a = sampler.draw(np.random.default_rng([3, 7]))
    b = sampler.draw(np.random.default_rng([3, 7]))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]


def test_sampler_rejects_impossible_sizes():
    with pytest.raises(ValueError):
        LogUniformSampler(10, 10)


def test_log_q_keeps_float64_precision_for_rare_words(static_scope):
    """At the release's vocabulary (52,445 words) and a typical draw count, log Q in the graph equals
    the sampler's float64 value: rounding (k+2)/(k+1) first was off by up to 3e-3 nats for rare ids."""
    from bilm.lm import log_expected_count

    V, tries = 52_445, 9_000
    ids = np.arange(V, dtype=np.int64)
    main = paddle.static.Program()
    with paddle.static.program_guard(main, paddle.static.Program()):
        k = paddle.static.data("k", [V], "int64")
        n = paddle.static.data("n", [1], "float32")
        log_q = log_expected_count(k, n, V)
    got, = paddle.static.Executor(paddle.CPUPlace()).run(main, feed={"k": ids, "n": np.array([tries], np.float32)},
                                                         fetch_list=[log_q])
    want = np.log(LogUniformSampler(V, 8000).expected_count(ids, tries))
    assert np.abs(got - want).max() < 2e-5
