"""The entity-pair and entity-span heads against HF's task models, on tiny random weights."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from engine.inference import InferenceProgram, save_inference_program  # noqa: E402
from engine.variables import set_value  # noqa: E402
from luke_static.formats import convert, load_luke_config, load_luke_variables  # noqa: E402
from luke_static.heads import entity_pair_classification, entity_span_classification  # noqa: E402
from luke_static.tokenizer import LukeTokenizer  # noqa: E402

from helpers.luke import ENTITIES, SIZES, write_tokenizer  # noqa: E402

TEXT = "Top seed Ana Ivanovic said on Thursday she could hardly believe her luck at Wimbledon."
LABELS = 5


def hf_task_model(root, cls, **overrides):
    """A random HF task model (non-trivial biases and norms), its tokenizer files and our conversion."""
    import json

    src = write_tokenizer(root / "hf")
    torch.manual_seed(0)
    config = transformers.LukeConfig(**{**SIZES, "vocab_size": len(json.loads((src / "vocab.json").read_text())) + 2,
                                        "entity_vocab_size": len(ENTITIES), "num_labels": LABELS, **overrides})
    model = cls(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(src)
    convert("hf", src, root / "model")
    return model, root / "model"


def run_ours(model_dir, build, head: dict, batch: dict, tmp_path):
    """Logits of our task program (encoder from the converted directory, head from HF) and of its export."""
    cfg = load_luke_config(model_dir)
    main = paddle.static.Program()
    with paddle.static.program_guard(main, paddle.static.Program()):
        graph = build(cfg, LABELS, training=False)
    exe = paddle.static.Executor(paddle.CPUPlace())
    names = {p.name for p in main.global_block().all_parameters()}
    load_luke_variables(model_dir, cfg, paddle.CPUPlace(), with_pooler="pooler.dense.weight" in names)
    for name, value in head.items():
        set_value(name, value, paddle.CPUPlace())
    feed = {n: batch[n] for n in graph.feeds}
    (logits,) = exe.run(main, feed=feed, fetch_list=[graph.outputs["logits"]])
    prefix = save_inference_program(tmp_path / "export" / "task", list(graph.feeds.values()), graph.outputs, exe, main)
    served = InferenceProgram(prefix).run(feed)["logits"]
    return logits, served


def test_entity_pair_head_equals_hf(tmp_path, static_scope):
    hf, model_dir = hf_task_model(tmp_path, transformers.LukeForEntityPairClassification)
    tokenizer = LukeTokenizer.from_dir(model_dir, add_prefix_space=True, task="entity_pair_classification")
    spans = [[(9, 21), (30, 38)], [(76, 85), (0, 8)]]  # head before / after the tail
    batch = tokenizer.pad([tokenizer.encode(TEXT, entity_spans=s) for s in spans])
    assert "classifier.bias" not in dict(hf.named_parameters())  # HF's pair classifier has no bias
    head = {"classifier.weight": hf.classifier.weight.detach().numpy().T}
    logits, served = run_ours(model_dir, entity_pair_classification, head, batch, tmp_path)
    with torch.no_grad():
        want = hf(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.numpy()
    assert logits.shape == (2, LABELS)
    np.testing.assert_allclose(logits, want, atol=1e-5)
    np.testing.assert_allclose(served, want, atol=1e-5)


def test_entity_span_head_equals_hf(tmp_path, static_scope):
    hf, model_dir = hf_task_model(tmp_path, transformers.LukeForEntitySpanClassification)
    tokenizer = LukeTokenizer.from_dir(model_dir, add_prefix_space=True, task="entity_span_classification")
    words = [(0, 3), (4, 8), (9, 12), (13, 21)]
    spans = [(s, e) for i, (s, _) in enumerate(words) for _, e in words[i:]]  # every span of these words
    batch = tokenizer.pad([tokenizer.encode(TEXT, entity_spans=spans), tokenizer.encode(TEXT, entity_spans=spans[:3])])
    head = {"classifier.weight": hf.classifier.weight.detach().numpy().T,
            "classifier.bias": hf.classifier.bias.detach().numpy()}
    logits, served = run_ours(model_dir, entity_span_classification, head, batch, tmp_path)
    with torch.no_grad():
        want = hf(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.numpy()
    assert logits.shape == (2, len(spans), LABELS)
    real = batch["entity_attention_mask"].astype(bool)
    np.testing.assert_allclose(logits[real], want[real], atol=1e-5)
    np.testing.assert_allclose(served[real], want[real], atol=1e-5)


def test_span_loss_ignores_padded_spans(static_scope):
    cfg = load_luke_config_like(SIZES)
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        graph = entity_span_classification(cfg, LABELS, training=True)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    rng = np.random.default_rng(0)
    feed = {"input_ids": rng.integers(3, 90, (2, 9)), "attention_mask": np.ones((2, 9), np.int64),
            "token_type_ids": np.zeros((2, 9), np.int64), "entity_ids": np.full((2, 3), 2),
            "entity_attention_mask": np.array([[1, 1, 1], [1, 0, 0]]),
            "entity_token_type_ids": np.zeros((2, 3), np.int64),
            "entity_position_ids": np.array([[[1, 2], [3, -1], [4, 5]], [[2, -1], [-1, -1], [-1, -1]]]),
            "entity_start_positions": np.array([[1, 3, 4], [2, 0, 0]]),
            "entity_end_positions": np.array([[2, 3, 5], [2, 0, 0]]),
            "labels": np.array([[1, 0, 4], [2, -100, -100]]), "dropout_seed": np.array([3], np.int32)}
    feed = {k: np.asarray(v, np.int32 if k == "dropout_seed" else np.int64) for k, v in feed.items()}
    loss, logits = exe.run(main, feed=feed, fetch_list=[graph.loss, graph.outputs["logits"]])
    z = logits.reshape(-1, LABELS)[[0, 1, 2, 3]]
    picked = z[np.arange(4), [1, 0, 4, 2]]
    want = np.mean(np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1) - picked)
    np.testing.assert_allclose(loss, want, rtol=1e-5)


def load_luke_config_like(sizes: dict):
    from luke_static.config import LukeConfig

    keys = {k: v for k, v in sizes.items() if k in LukeConfig.__dataclass_fields__}
    return LukeConfig(**keys)
