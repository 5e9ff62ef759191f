"""LUKE's variables under HF's parameter names (the `luke.` prefix dropped).

Names are those of `transformers`' `LukeModel`, so a converted checkpoint is a
file-per-parameter copy a user can read against HF's code; the one layout
difference is Paddle's: a dense layer's weight is [in, out] (torch: [out, in]).
"""

from __future__ import annotations

from luke_static.config import LukeConfig

QUERIES = ("query", "w2e_query", "e2w_query", "e2e_query")


def linear(prefix: str, n_in: int, n_out: int, bias: bool = True) -> dict[str, tuple[int, ...]]:
    shapes = {f"{prefix}.weight": (n_in, n_out)}
    if bias:
        shapes[f"{prefix}.bias"] = (n_out,)
    return shapes


def layer_norm(prefix: str, size: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (size,), f"{prefix}.bias": (size,)}


def variable_shapes(cfg: LukeConfig, with_pooler: bool = True) -> dict[str, tuple[int, ...]]:
    """Every encoder variable: name → shape (Paddle layout)."""
    H, I = cfg.hidden_size, cfg.intermediate_size
    shapes = {
        "embeddings.word_embeddings.weight": (cfg.vocab_size, H),
        "embeddings.position_embeddings.weight": (cfg.max_position_embeddings, H),
        "embeddings.token_type_embeddings.weight": (cfg.type_vocab_size, H),
        **layer_norm("embeddings.LayerNorm", H),
        "entity_embeddings.entity_embeddings.weight": (cfg.entity_vocab_size, cfg.entity_emb_size),
        "entity_embeddings.position_embeddings.weight": (cfg.max_position_embeddings, H),
        "entity_embeddings.token_type_embeddings.weight": (cfg.type_vocab_size, H),
        **layer_norm("entity_embeddings.LayerNorm", H),
    }
    if cfg.entity_emb_size != H:
        shapes.update(linear("entity_embeddings.entity_embedding_dense", cfg.entity_emb_size, H, bias=False))
    queries = QUERIES if cfg.use_entity_aware_attention else QUERIES[:1]
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}"
        for name in (*queries, "key", "value"):
            shapes.update(linear(f"{p}.attention.self.{name}", H, H))
        shapes.update(linear(f"{p}.attention.output.dense", H, H))
        shapes.update(layer_norm(f"{p}.attention.output.LayerNorm", H))
        shapes.update(linear(f"{p}.intermediate.dense", H, I))
        shapes.update(linear(f"{p}.output.dense", I, H))
        shapes.update(layer_norm(f"{p}.output.LayerNorm", H))
    if with_pooler:
        shapes.update(linear("pooler.dense", H, H))
    return shapes
