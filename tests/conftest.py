"""Shared fixtures: a fresh Paddle scope per test and a tiny learnable corpus."""

from __future__ import annotations

import os

import pytest

from helpers.corpus import write_toy_corpus

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def toy_corpus(tmp_path) -> dict[str, str]:
    return write_toy_corpus(tmp_path / "corpus")


@pytest.fixture
def static_scope():
    """Static mode and a scope of its own, so tests never see each other's variables."""
    import paddle

    paddle.enable_static()
    scope = paddle.static.Scope()
    with paddle.static.scope_guard(scope):
        yield scope
