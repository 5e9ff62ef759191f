"""`python -m luke_static VERB [flags]`: LUKE's commands (`python -m luke_static --help` lists them)."""

from engine.command import dispatch, quiet

quiet()

VERBS = {
    "convert": ("luke_static.cli:convert", "an HF or PaddleNLP checkpoint into a model directory (heads included)"),
    "export": ("luke_static.cli:export", "a model directory as an inference program (its task's, with a head)"),
    "predict": ("luke_static.cli:predict", "run an export on a file: one JSON record per input (task from the export)"),
    "fill_mask": ("luke_static.cli:fill_mask", "the top words for each <mask> and entities for each span"),
    "squad_check": ("luke_static.cli:squad_check", "how much of a SQuAD file survives preprocessing (an oracle)"),
    "squad_eval": ("luke_static.cli:squad_eval", "the official SQuAD v1.1 evaluation of a predictions file"),
}

if __name__ == "__main__":
    dispatch("luke_static", VERBS)
