"""What the LUKE fine-tuning jobs share: the pretrained encoder, its tokenizer, model files."""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.job import Job
from engine.variables import load_variables
from luke_static.config import load_luke_config, save_luke_config
from luke_static.convert import TOKENIZER_FILES
from luke_static.params import variable_shapes
from luke_static.tokenizer import LukeTokenizer


class LukeTask(Job):
    """Base of a fine-tuning job: encoder config and weights from a converted model directory."""

    def __init__(self, model_dir: str | Path, **tokenizer_settings):
        self.model_dir = Path(model_dir)
        self.luke = load_luke_config(self.model_dir)
        self.tokenizer = LukeTokenizer.from_dir(self.model_dir, add_prefix_space=True, **tokenizer_settings)

    def initialize(self, exe, program) -> None:
        """Loads the pretrained encoder variables the program has (not the new head)."""
        names = {p.name for p in program.global_block().all_parameters()}
        shapes = {n: s for n, s in variable_shapes(self.luke, with_pooler=True).items() if n in names}
        loaded = load_variables(self.model_dir, shapes, exe.place)
        print(f"LUKE encoder from {self.model_dir}: {len(loaded)} variables", flush=True)

    def write_model_files(self, directory: Path) -> None:
        save_luke_config(self.luke, directory)
        copy_tokenizer(self.model_dir, directory)


def copy_tokenizer(source: Path, directory: Path) -> None:
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, Path(directory) / name)
