"""The programs that make one optimizer step, built in one path:

    forward (the job's graph) → backward → [accumulate] → all-reduce → non-finite guard → clip → apply

- *backward* takes autodiff's gradients of the trainable parameters, and
  lets each of the graph's gradient sources (`engine.ops`) form the gradients
  of its own parameters: weights used in many small products get one product,
  tables read by row get the gradient of their rows;
- row gradients stay rows only where updating just those rows is exact
  (`engine.optim.row_wise_applies`), else they become dense;
- with `optim.accumulate_steps = k` the step program adds the gradients of
  each micro-batch into persistable accumulators (`<param>@GRAD_ACC`), and a
  second program takes their mean through the rest of the path and zeroes them;
- the all-reduce sums every gradient over the ranks inside the program
  (`fleet.distributed_optimizer(...).minimize` fails in PIR on the CPU wheel
  of Paddle 3.3.1; this works with gloo and NCCL alike);
- clipping covers dense and row gradients under one global norm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import paddle
from paddle import _C_ops

from engine.errors import ConfigError
from engine.job import TrainGraph
from engine.ops import RowGather, use_compiled_kernels
from engine.optim import (
    OptimConfig,
    apply_gradients,
    clip_by_global_norm,
    densify,
    freeze_parameters,
    learning_rate,
    row_wise_applies,
)
from engine.runtime import DistEnv
from engine.variables import persistable_shapes

ACCUMULATOR_SUFFIX = "@GRAD_ACC"


@dataclass
class StepPrograms:
    graph: TrainGraph
    step: paddle.static.Program  # run once per (micro-)batch
    update: paddle.static.Program | None  # run once per k micro-batches, when accumulating
    startups: list  # run in this order
    scheduler: object | None  # an LRScheduler the loop steps after each update
    frozen: list[str]
    freeze_skipped: list[str] = field(default_factory=list)  # `optim.freeze` prefixes of unbuilt parameters

    def persistable_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = persistable_shapes(self.step)
        if self.update is not None:
            shapes.update(persistable_shapes(self.update))
        return shapes


def build_step_programs(build_graph: Callable[[], TrainGraph], optim: OptimConfig, dist: DistEnv = DistEnv(),
                        seed: int = 0, total_steps: int = 1, start_step: int = 0,
                        skip_nonfinite: bool = False, compiled_kernels: bool = False) -> StepPrograms:
    """Builds `build_graph()` plus its optimization, under fresh names (stable across processes).

    `seed` seeds the parameters' initialisation (the same on every rank);
    `total_steps` and `start_step` position the learning-rate schedule;
    `skip_nonfinite` zeroes every gradient of a step whose loss or gradients are not finite;
    `compiled_kernels` builds the graph with our compiled CPU kernels (`engine.ops.use_compiled_kernels`).
    """
    main, startup = paddle.static.Program(), paddle.static.Program()
    if compiled_kernels:
        use_compiled_kernels(main)
    # Same seed on every rank: identical initial parameters without a broadcast.
    startup.random_seed = seed + 1
    lr = learning_rate(optim, total_steps, start_step)
    scheduler = lr if isinstance(lr, paddle.optimizer.lr.LRScheduler) else None
    update, startups = None, [startup]
    # A fresh name generator: optimizer state gets the same names
    # (`<param>_moment1_0`, `learning_rate_0`) in every process, so checkpoints load by name.
    with paddle.utils.unique_name.guard():
        with paddle.static.program_guard(main, startup):
            graph = build_graph()
            frozen, unbuilt = freeze_parameters(main, optim.freeze, graph.unbuilt_parameters)
            objective = graph.objective if graph.objective is not None else graph.loss
            grads = backward(main, objective, graph.gradient_sources)
            if not row_wise_applies(optim, dist.world):
                grads = densify(grads)
            if optim.accumulate_steps > 1:
                accumulators = [(p, _accumulate(p, g)) for p, g in grads]
        applying = (main, startup)
        if optim.accumulate_steps > 1:
            update, update_startup = paddle.static.Program(), paddle.static.Program()
            if compiled_kernels:
                use_compiled_kernels(update)
            update_startup.random_seed = seed + 1
            # The update program's startup initialises the optimizer state; the step
            # program's startup (run second) gives the parameters their seeded values.
            startups = [update_startup, startup]
            applying, objective = (update, update_startup), None
        with paddle.static.program_guard(*applying):
            if update is not None:
                pairs = [(_same_parameter(p), _same_parameter(a)) for p, a in accumulators]
                grads = [(p, a / float(optim.accumulate_steps)) for p, a in pairs]
            if dist.world > 1:
                grads = allreduce(grads, dist.world)
            if skip_nonfinite:
                grads = zero_if_nonfinite(grads, objective)
            if optim.grad_clip > 0:
                grads = clip_by_global_norm(grads, optim.grad_clip)
            apply_gradients(grads, optim, lr)
            if update is not None:
                for _, acc in pairs:
                    _C_ops.assign_out_(paddle.zeros_like(acc), acc)
    return StepPrograms(graph, main, update, startups, scheduler, frozen, unbuilt)


def backward(main, objective, sources: list) -> list[tuple]:
    """(target, gradient) pairs for every trainable parameter, from one backward pass.

    A target is a parameter, or a `RowGather` whose gradient is that of its
    rows. Parameters of a gradient source get their gradients from the source.
    """
    trainable = lambda p: not p.stop_gradient  # noqa: E731
    sources = [s for s in sources if any(trainable(p) for p in s.parameters())]
    routed = {p.name for s in sources for p in s.parameters()}
    params = [p for p in main.global_block().all_parameters() if trainable(p) and p.name not in routed]
    values = [v for s in sources for v in s.values()]
    grads = paddle.autograd.ir_backward.grad(objective, params + values, allow_unused=True)
    unused = [p.name for p, g in zip(params, grads) if g is None]
    if unused:
        # Left alone it would silently never train: say so, as for row tables and products.
        raise ConfigError(f"trainable parameter(s) {', '.join(unused)} do not reach the loss; list them in "
                          "optim.freeze to keep them fixed, or use them in the graph")
    pairs = list(zip(params, grads))
    start = len(params)
    for source in sources:
        n = len(source.values())
        pairs += [(t, g) for t, g in source.gradients(grads[start:start + n]) if trainable(_parameter(t))]
        start += n
    return pairs


def allreduce(pairs: list[tuple], world: int) -> list[tuple]:
    """Sums each gradient over the ranks and divides by their number (in-graph)."""
    averaged = []
    for target, grad in pairs:
        paddle.distributed.all_reduce(grad)
        averaged.append((target, grad / float(world)))
    return averaged


def zero_if_nonfinite(pairs: list[tuple], objective=None) -> list[tuple]:
    """Replaces every gradient by zeros when the objective (if given) or any gradient is NaN/inf.

    With Adagrad and SGD a zero gradient leaves parameters and accumulators
    unchanged; Adam's momentum still moves the parameters a little.
    """
    finite = paddle.full([], True, "bool") if objective is None else paddle.isfinite(objective).all()
    for _, grad in pairs:
        finite = paddle.logical_and(finite, paddle.isfinite(grad.sum()))
    return [(target, paddle.where(finite, grad, paddle.zeros_like(grad))) for target, grad in pairs]


def _parameter(target):
    return target.table if isinstance(target, RowGather) else target


def _accumulate(param, grad):
    """`param@GRAD_ACC += grad` in the current program (a persistable zero-initialised variable)."""
    attr = paddle.ParamAttr(name=param.name + ACCUMULATOR_SUFFIX, trainable=False,
                            initializer=paddle.nn.initializer.Constant(0.0))
    acc = paddle.static.create_parameter(list(param.shape), "float32", attr=attr)
    # `add_` on a parameter is not in place in PIR; `assign_out_` writes the variable.
    _C_ops.assign_out_(acc + grad, acc)
    return acc


def _same_parameter(value):
    """A handle in the current program on the variable of `value` (from another program), by name."""
    attr = paddle.ParamAttr(name=value.name, trainable=not value.name.endswith(ACCUMULATOR_SUFFIX))
    return paddle.static.create_parameter(list(value.shape), "float32", attr=attr)
