"""LUKE (the entity-aware transformer) as static programs.

From Python, one call from a model to results: `luke_static.pipeline(task, model)`
for `ner`, `relation`, `entity_typing`, `question_answering` and `fill_mask`
(see `luke_static.pipelines`).

- `luke_static.config`: the architecture (`LukeConfig`), read from HF or PaddleNLP configs.
- `luke_static.model`: the encoder (`luke_feeds`, `luke_encoder`): parameters
  under HF's names, embeddings, entity-aware attention, blocks.
- `luke_static.heads`: one builder per task model, HF's head names and losses:
  `question_answering`, `entity_typing`, `entity_pair_classification`,
  `entity_span_classification`, `masked_lm`.
- `luke_static.tokenizer`: words by byte-level BPE, entities by title.
- `luke_static.formats`: model directories, conversion from HF / PaddleNLP
  (heads included), task records, exports (`engine.weights_io` reads
  the checkpoint files without torch and without running pickles).
- `luke_static.finetune`: what the fine-tuning jobs share. A task is a
  folder: `squad/`, `open_entity/`, `ner/`, `relation/` each hold its data
  (`data.py`), its job (`job.py`) and its pipeline (`predict.py`);
  `masked_lm/` holds the fill-mask pipeline.
- `luke_static.pipelines`: the pipelines' base and `pipeline()`.
- `luke_static.cli`: the command lines, `python -m luke_static VERB` (`convert`, `export`,
  `predict`, `fill-mask`, `squad-check`, `squad-eval`).
"""

__all__ = ["pipeline"]


def __getattr__(name: str):
    # Imported on first use: importing the package does not start Paddle (and
    # Paddle's start-up chatter is turned off first, as the command lines do).
    if name == "pipeline":
        from engine.command import quiet

        quiet()
        from luke_static.pipelines import pipeline


        return pipeline
    raise AttributeError(f"module 'luke_static' has no attribute '{name}'")
