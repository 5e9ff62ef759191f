"""Weights used in many small products get their gradient from one large product.

An unrolled recurrence multiplies the same weight at every time step, and
autodiff then builds one small weight-gradient product per step and sums
them: 20 steps of [256, 32]·[32, 4096] for an ELMo layer, which MKL runs at a
fraction of its large-matrix rate. Routed through `WeightProducts`, each step
uses a detached view of the weight that takes no gradient; the engine asks autodiff
for the gradient of each step's output instead (it computes those anyway),
and forms the weight's gradient as one product of all steps' inputs and
output gradients, Σ xₜᵀ·dyₜ = [x₁; …; x_T]ᵀ·[dy₁; …; dy_T]. The values and
the gradient are the same; only the summation order differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import paddle


@dataclass
class _Uses:
    weight: object  # the parameter
    constant: object  # the same values taking no gradient, used by every product
    inputs: list = field(default_factory=list)  # x of each product
    outputs: list = field(default_factory=list)  # x·W of each product


class WeightProducts:
    """Records x·W products so the engine can compute W's gradient in one product."""

    def __init__(self):
        self._uses: dict[str, _Uses] = {}

    def matmul(self, x, weight):
        """x [N, K] · weight [K, M]."""
        out = paddle.matmul(x, self._record(weight).constant)
        return self._add(weight, x, out)

    def addmm(self, base, x, weight):
        """base [N, M] + x [N, K] · weight [K, M] (the weight's gradient is that of x·W alone)."""
        out = paddle.addmm(base, x, self._record(weight).constant)
        return self._add(weight, x, out)

    @property
    def weights(self) -> list:
        return [u.weight for u in self._uses.values()]

    def outputs(self) -> list:
        """Every recorded product's output, the values whose gradients `weight_gradients` needs."""
        return [o for u in self._uses.values() for o in u.outputs]

    def weight_gradients(self, output_grads: list) -> list[tuple[object, object]]:
        """(weight, gradient) pairs from the gradients of `outputs()`, in that order."""
        pairs, start = [], 0
        for use in self._uses.values():
            grads = output_grads[start:start + len(use.outputs)]
            start += len(use.outputs)
            if any(g is None for g in grads):
                raise RuntimeError(f"a product of {use.weight.name} does not reach the objective")
            inputs = paddle.concat(use.inputs) if len(use.inputs) > 1 else use.inputs[0]
            grad = paddle.concat(grads) if len(grads) > 1 else grads[0]
            pairs.append((use.weight, paddle.matmul(inputs, grad, transpose_x=True)))
        return pairs

    def _record(self, weight) -> _Uses:
        if weight.name not in self._uses:
            # `detach` shares the weight's memory: no copy per step.
            self._uses[weight.name] = _Uses(weight, weight.detach())
        return self._uses[weight.name]

    def _add(self, weight, x, out):
        use = self._uses[weight.name]
        use.inputs.append(x)
        use.outputs.append(out)
        return out
