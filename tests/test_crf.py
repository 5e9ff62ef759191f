"""The CRF against brute-force enumeration of every tag sequence."""

import itertools

import numpy as np
import paddle

from tagger.crf import crf_loss, viterbi_decode


def test_log_likelihood_and_viterbi_equal_brute_force(static_scope):
    B, T, n = 4, 4, 3
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        e = paddle.static.data("e", [-1, -1, n], "float32")
        y = paddle.static.data("y", [-1, -1], "int64")
        lengths = paddle.static.data("l", [-1], "int64")
        w = paddle.static.create_parameter([n + 2, n], "float32", attr=paddle.ParamAttr(name="crfw"))
        nll, path = crf_loss(e, y, lengths, w), viterbi_decode(e, lengths, w)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    rng = np.random.default_rng(0)
    W = rng.normal(size=(n + 2, n)).astype(np.float32)
    static_scope.find_var("crfw").get_tensor().set(W, paddle.CPUPlace())
    E = rng.normal(size=(B, T, n)).astype(np.float32)
    L = np.array([4, 3, 2, 1])
    Y = rng.integers(0, n, (B, T))
    got_nll, got_path = exe.run(main, feed={"e": E, "y": Y, "l": L}, fetch_list=[nll, path])

    def score(b, seq):
        s = W[0, seq[0]] + W[1, seq[-1]] + sum(E[b, t, seq[t]] for t in range(len(seq)))
        return s + sum(W[2 + seq[t - 1], seq[t]] for t in range(1, len(seq)))

    for b in range(B):
        seqs = list(itertools.product(range(n), repeat=int(L[b])))
        scores = np.array([score(b, s) for s in seqs], np.float64)
        log_z = np.log(np.exp(scores - scores.max()).sum()) + scores.max()
        np.testing.assert_allclose(got_nll[b], log_z - score(b, Y[b, :L[b]]), rtol=1e-5, atol=1e-5)
        assert tuple(got_path[b, :L[b]]) == seqs[int(scores.argmax())]
        assert not got_path[b, L[b]:].any()


def test_decoding_keeps_to_iob2_where_the_unconstrained_path_breaks_it(static_scope):
    from reader.chunks import allowed_transitions, chunks, follows_iob2

    tags = ["O", "n-B", "n-I", "nt-B", "nt-I"]
    n, T = len(tags), 4
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        e = paddle.static.data("e", [-1, -1, n], "float32")
        lengths = paddle.static.data("l", [-1], "int64")
        w = paddle.static.create_parameter([n + 2, n], "float32", attr=paddle.ParamAttr(name="crfw"))
        free, kept = viterbi_decode(e, lengths, w), viterbi_decode(e, lengths, w, allowed_transitions(tags))
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    # A model that never learnt the scheme: no transition scores, emissions that favour `nt-I` right
    # after `n-I` (the impossible sequence a user saw) and an `n-I` first.
    static_scope.find_var("crfw").get_tensor().set(np.zeros((n + 2, n), np.float32), paddle.CPUPlace())
    E = np.full((1, T, n), -1.0, np.float32)
    for t, tag in enumerate(["n-I", "n-I", "nt-I", "O"]):
        E[0, t, tags.index(tag)] = 2.0
    E[0, 0, tags.index("n-B")] = 1.5
    E[0, 2, tags.index("nt-B")] = 1.0
    got_free, got_kept = exe.run(main, feed={"e": E, "l": np.array([T])}, fetch_list=[free, kept])
    unconstrained = [tags[i] for i in got_free[0]]
    constrained = [tags[i] for i in got_kept[0]]
    assert unconstrained == ["n-I", "n-I", "nt-I", "O"] and not follows_iob2([unconstrained])
    assert follows_iob2([constrained])
    # The best path among the valid ones, by enumeration.
    valid = [s for s in itertools.product(range(n), repeat=T) if follows_iob2([[tags[i] for i in s]])]
    best = max(valid, key=lambda s: sum(E[0, t, i] for t, i in enumerate(s)))
    assert constrained == [tags[i] for i in best] == ["n-B", "n-I", "nt-B", "O"]
    assert chunks(constrained) == {("n", 0, 2), ("nt", 2, 3)}


def test_the_allowed_transitions_are_iob2s():
    from reader.chunks import allowed_transitions, follows_iob2

    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "n"]
    may_start, may_follow = allowed_transitions(tags)
    assert list(may_start) == [True, True, False, True, False, True]
    index = tags.index
    assert may_follow[index("B-PER"), index("I-PER")] and may_follow[index("I-PER"), index("I-PER")]
    assert not may_follow[index("O"), index("I-PER")] and not may_follow[index("B-LOC"), index("I-PER")]
    assert not may_follow[index("n"), index("I-PER")] and may_follow[index("I-LOC"), index("n")]
    assert follows_iob2([["B-PER", "I-PER", "O"]]) and not follows_iob2([["O", "I-PER"]])
