"""A saved inference program behind `paddle.inference`, fed and read by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class InferenceProgram:
    """Runs `PREFIX.json` + `PREFIX.pdiparams`: `run({input name: array}) → {output name: array}`."""

    def __init__(self, prefix: str | Path, threads: int = 2, onednn: bool = False):
        from paddle import inference

        from engine.errors import CheckpointError

        prefix = str(prefix)
        if not Path(prefix + ".json").is_file():
            raise CheckpointError(f"no inference program at {prefix}.json")
        config = inference.Config(prefix + ".json", prefix + ".pdiparams")
        config.disable_glog_info()
        config.set_cpu_math_library_num_threads(threads)
        if onednn:
            config.enable_mkldnn()
        self._predictor = inference.create_predictor(config)
        self.input_names = self._predictor.get_input_names()
        self.output_names = self._predictor.get_output_names()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise KeyError(f"missing inputs: {', '.join(missing)} (the program takes {', '.join(self.input_names)})")
        for name in self.input_names:
            value = np.ascontiguousarray(feeds[name])
            handle = self._predictor.get_input_handle(name)
            handle.reshape(value.shape)
            handle.copy_from_cpu(value)
        self._predictor.run()
        return {name: self._predictor.get_output_handle(name).copy_to_cpu() for name in self.output_names}
