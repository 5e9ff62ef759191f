"""LUKE's parameters in a program, and the small layers built on them."""

from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle.nn.initializer import Constant, Normal

from engine.affine import affine
from luke_static.config import LukeConfig
from luke_static.params import variable_shapes


class LukeParams:
    """Creates each encoder variable (by its HF name) the first time a layer asks for it."""

    def __init__(self, cfg: LukeConfig, with_pooler: bool = True, trainable: bool = True):
        self.cfg = cfg
        self.shapes = variable_shapes(cfg, with_pooler)
        self.trainable = trainable
        self._made: dict[str, object] = {}

    def __getitem__(self, name: str):
        if name not in self._made:
            shape = self.shapes[name]
            if name.endswith("LayerNorm.weight"):
                init = Constant(1.0)
            elif name.endswith(".bias"):
                init = Constant(0.0)
            else:
                init = Normal(0.0, 0.02)  # HF's initializer_range
            attr = paddle.ParamAttr(name=name, initializer=init, trainable=self.trainable)
            self._made[name] = paddle.static.create_parameter(list(shape), "float32", attr=attr)
        return self._made[name]

    def has(self, name: str) -> bool:
        return name in self.shapes

    def linear(self, prefix: str, x):
        if self.has(f"{prefix}.bias"):
            return affine(x, self[f"{prefix}.weight"], self[f"{prefix}.bias"])
        return paddle.matmul(x, self[f"{prefix}.weight"])

    def layer_norm(self, prefix: str, x):
        return F.layer_norm(x, x.shape[-1:], self[f"{prefix}.weight"], self[f"{prefix}.bias"],
                            epsilon=self.cfg.layer_norm_eps)
