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
