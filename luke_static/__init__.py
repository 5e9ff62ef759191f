"""LUKE (the entity-aware transformer) as static programs.

- `luke_static.model`: the encoder (`luke_feeds`, `luke_encoder`), built from
  `luke_static.embeddings` and `luke_static.attention`, on `LukeConfig`.
- `luke_static.tokenizer`: words by byte-level BPE, entities by title.
- `luke_static.convert` / `luke_static.export`: checkpoints from HF or
  PaddleNLP into model directories, and inference programs out of them.
"""
