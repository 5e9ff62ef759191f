"""The engine's optimization on a job of its own: accumulation, schedules, decay, freezing."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ConfigError
from engine.optim import OptimConfig, learning_rate, no_decay

from helpers.engine import run


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_accumulating_k_micro_batches_equals_one_k_times_larger_batch(tmp_path, name):
    common = {"name": name, "learning_rate": 0.05, "weight_decay": 0.01, "schedule": "linear",
              "warmup_ratio": 0.2}
    big = run(tmp_path, "big", rows=8, steps=6, **common)
    accumulated = run(tmp_path, "acc", rows=4, steps=6, accumulate_steps=2, **common)
    for key in big:
        np.testing.assert_allclose(accumulated[key], big[key], atol=1e-6, err_msg=key)
    single = run(tmp_path, "single", rows=4, steps=6, **common)
    assert np.abs(single["reg.weight"] - big["reg.weight"]).max() > 1e-4  # the test can tell them apart


def test_weight_decay_spares_biases_and_layer_norms(tmp_path):
    from engine.optim import build_optimizer

    assert no_decay("encoder.layer.0.output.LayerNorm.weight") and no_decay("pooler.dense.bias")
    assert not no_decay("encoder.layer.0.output.dense.weight")
    decides = build_optimizer(OptimConfig(name="adamw", weight_decay=0.1), 0.1)._apply_decay_param_fun
    assert decides("reg.weight") and not decides("reg.bias") and not decides("reg.LayerNorm.weight")
    plain = run(tmp_path, "plain", rows=4, steps=3, name="adamw", learning_rate=0.1, weight_decay=0.0)
    decayed = run(tmp_path, "decayed", rows=4, steps=3, name="adamw", learning_rate=0.1, weight_decay=0.5)
    assert np.abs(plain["reg.weight"] - decayed["reg.weight"]).max() > 1e-4


def test_linear_schedule_warms_up_decays_and_resumes_in_place():
    cfg = OptimConfig(learning_rate=1.0, schedule="linear", warmup_ratio=0.25)
    scheduler = learning_rate(cfg, total_steps=8)
    rates = []
    for _ in range(8):
        rates.append(scheduler.get_lr())
        scheduler.step()
    assert rates == pytest.approx([0.5, 1.0, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6])
    assert learning_rate(cfg, total_steps=8, start_step=5).get_lr() == pytest.approx(rates[5])
    assert learning_rate(OptimConfig(learning_rate=0.3), total_steps=8) == 0.3


def test_frozen_parameters_do_not_train(tmp_path):
    one = run(tmp_path, "one", rows=4, steps=1, name="sgd", learning_rate=0.1, freeze=["reg.weight"])
    three = run(tmp_path, "three", rows=4, steps=3, name="sgd", learning_rate=0.1, freeze=["reg.weight"])
    np.testing.assert_array_equal(one["reg.weight"], three["reg.weight"])
    assert np.abs(one["reg.bias"] - three["reg.bias"]).max() > 1e-4  # the rest trains
    with pytest.raises(ConfigError, match="optim.freeze: no parameter name starts with 'nope'"):
        run(tmp_path, "bad", rows=4, steps=1, freeze=["nope"])


def test_freezing_a_parameter_this_configuration_does_not_build_is_a_note(tmp_path, capsys):
    run(tmp_path, "note", rows=4, steps=1, job={"unbuilt": ("reg.table.weight",)}, freeze=["reg.table"])
    assert "note: optim.freeze: 'reg.table' is not built in this configuration" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="no parameter name starts with 'reg.tabel'"):  # a typo stays an error
        run(tmp_path, "typo", rows=4, steps=1, job={"unbuilt": ("reg.table.weight",)}, freeze=["reg.tabel"])


def test_a_trainable_parameter_that_never_reaches_the_loss_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"trainable parameter\(s\) reg.unused do not reach the loss"):
        run(tmp_path, "unused", rows=4, steps=1, job={"unused": True})
    run(tmp_path, "frozen", rows=4, steps=1, job={"unused": True}, freeze=["reg.unused"])  # frozen: fine
