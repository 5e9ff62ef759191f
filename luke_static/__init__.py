"""LUKE (the entity-aware transformer) as static programs.

- `luke_static.config`: the architecture (`LukeConfig`), read from HF or PaddleNLP configs.
- `luke_static.model`: the encoder (`luke_feeds`, `luke_encoder`): parameters
  under HF's names, embeddings, entity-aware attention, blocks.
- `luke_static.heads`: one builder per task model (`question_answering`,
  `entity_typing`), HF's head names and losses.
- `luke_static.tokenizer`: words by byte-level BPE, entities by title.
- `luke_static.formats`: model directories, conversion from HF / PaddleNLP,
  export of the encoder (`luke_static.weights_io` reads the checkpoint files
  without torch and without running pickles).
- `luke_static.finetune`: what the fine-tuning jobs share; `squad/` and
  `open_entity/` hold each task's data and job.
- `luke_static.cli`: the command lines (`python -m luke_static.convert`, `export`,
  `squad_check`, `squad_eval`, `squad_predict`, `open_entity_predict`).
"""
