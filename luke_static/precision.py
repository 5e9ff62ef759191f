"""How a lower-precision LUKE export is measured before it serves (`engine.precision`).

A task export is checked through its own pipeline: the check file (inputs as
`python -m luke_static predict --input` reads them) is predicted once with
the fp32 program and once with the candidate, and `agreement` is the share of
inputs whose predictions (labels, spans, answers; scores aside) are the same.
An encoder export is checked on plain text, one input per line, through the
model's tokenizer. Either way every output is compared too (max |Δ|, cosine,
top-label agreement). A fine-tuning run measures on its dev set instead
(`LukeTask.measure_on_dev`).
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import ConfigError
from engine.precision import ComparingProgram, OutputCheck
from luke_static.tokenizer import load_tokenizer


def pipeline_check(directory: str | Path, inputs: str | Path, threads: int = 2):
    """A `measure(reference, candidate)` for `engine.inference.lower_precision` of the task export in
    `directory`, over the inputs file `inputs`."""
    from luke_static.pipelines import pipeline_for

    def measure(reference, candidate) -> dict:
        pipe = pipeline_for(directory, backend="paddle", threads=threads, precision="fp32")
        pipe.program = reference
        want = list(pipe.records(inputs))
        if not want:
            raise ConfigError(f"{inputs}: no input to check the export on")
        check = OutputCheck()
        pipe.program = ComparingProgram(reference, candidate, check)
        got = list(pipe.records(inputs))
        same = sum(predictions(a) == predictions(b) for a, b in zip(want, got))
        return {"outputs": check.summary(), "agreement": same / len(want), "inputs": len(want)}

    return measure


def encoder_check(directory: str | Path, text: str | Path, max_length: int = 256, batch_size: int = 8):
    """A `measure(reference, candidate)` for an encoder export in `directory`: each non-blank line of
    `text` encoded by the model's tokenizer (no entities), cut to `max_length` tokens."""
    tokenizer = load_tokenizer(directory, add_prefix_space=True)
    lines = [line.strip() for line in Path(text).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise ConfigError(f"{text}: no text to check the export on")

    def measure(reference, candidate) -> dict:
        check = OutputCheck()
        for first in range(0, len(lines), batch_size):
            feeds = tokenizer.pad([tokenizer.encode(line, max_length=max_length)
                                   for line in lines[first:first + batch_size]])
            feeds = {name: feeds[name] for name in reference.input_names}
            check.add(reference.run(feeds), candidate.run(feeds))
        return {"outputs": check.summary(), "inputs": len(lines)}

    return measure


def predictions(record):
    """A predictor's record without its scores (floats): what must not change with the precision."""
    if isinstance(record, dict):
        return {key: predictions(value) for key, value in record.items() if not isinstance(value, float)}
    if isinstance(record, list):
        return [predictions(value) for value in record]
    return record
