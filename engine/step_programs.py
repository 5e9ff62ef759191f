"""The programs that make one optimizer step.

Without gradient accumulation it is one program: forward, backward, update.
With `optim.accumulate_steps = k`, the step program runs forward and backward
on each of k micro-batches and adds the gradients into persistable
accumulators (`<param>@GRAD_ACC`); an update program then applies their mean
and zeroes them. Either way, the all-reduce across ranks and the non-finite
guard act on the gradients the optimizer applies.

A graph may declare tables it reads by row (`TrainGraph.row_gathers`,
updated row-wise where that is exact, see `engine.row_tables`) and weights
used in many small products (`TrainGraph.weight_products`, whose gradients
are formed in one product, see `engine.weight_products`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import paddle
from paddle import _C_ops

from engine.gradients import allreduce_gradients, zero_if_nonfinite
from engine.job import Job, TrainGraph
from engine.optim import OptimConfig, build_optimizer, freeze_parameters, learning_rate
from engine.row_tables import apply_row_updates, clip_by_global_norm, row_wise_applies
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

    def persistable_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = persistable_shapes(self.step)
        if self.update is not None:
            shapes.update(persistable_shapes(self.update))
        return shapes


def build_step_programs(job: Job, optim: OptimConfig, dist: DistEnv, seed: int, total_steps: int,
                        start_step: int, skip_nonfinite: bool) -> StepPrograms:
    """Builds the job's graph plus its optimization, under fresh names (stable across processes)."""
    main, startup = paddle.static.Program(), paddle.static.Program()
    # Same seed on every rank: identical initial parameters without a broadcast.
    startup.random_seed = seed + 1
    lr = learning_rate(optim, total_steps, start_step)
    scheduler = lr if isinstance(lr, paddle.optimizer.lr.LRScheduler) else None

    def finish(params_grads, objective):
        if dist.world > 1:
            params_grads = allreduce_gradients(params_grads, dist.world)
        if skip_nonfinite:
            params_grads = zero_if_nonfinite(params_grads, objective)
        return params_grads

    # A fresh name generator: optimizer state gets the same names
    # (`<param>_moment1_0`, `learning_rate_0`) in every process, so checkpoints load by name.
    with paddle.utils.unique_name.guard():
        with paddle.static.program_guard(main, startup):
            graph = job.build_train_graph()
            frozen = freeze_parameters(main, optim.freeze)
            objective = graph.objective if graph.objective is not None else graph.loss
            gathers = [g for g in graph.row_gathers if not g.table.stop_gradient]
            if gathers and row_wise_applies(optim, dist.world):
                _row_wise_step(main, objective, graph, gathers, optim, lr, finish)
                return StepPrograms(graph, main, None, [startup], scheduler, frozen)
            optimizer = build_optimizer(optim, lr)
            params_grads, _ = _gradients(main, objective, graph, [])
            if optim.accumulate_steps == 1:
                optimizer.apply_gradients(finish(params_grads, objective))
                return StepPrograms(graph, main, None, [startup], scheduler, frozen)
            accumulators = [(p, _accumulate(p, g)) for p, g in params_grads]
        update, update_startup = paddle.static.Program(), paddle.static.Program()
        update_startup.random_seed = seed + 1
        with paddle.static.program_guard(update, update_startup):
            pairs = [(_same_parameter(p), _same_parameter(a)) for p, a in accumulators]
            mean = [(p, a / float(optim.accumulate_steps)) for p, a in pairs]
            build_optimizer(optim, lr).apply_gradients(finish(mean, None))
            for _, acc in pairs:
                _C_ops.assign_out_(paddle.zeros_like(acc), acc)
    # The update program's startup initialises the optimizer state; the step
    # program's startup (run second) gives the parameters their seeded values.
    return StepPrograms(graph, main, update, [update_startup, startup], scheduler, frozen)


def _gradients(main, objective, graph: TrainGraph, gathers: list) -> tuple[list, list]:
    """(parameter, gradient) pairs of the trainable parameters, and the gradients of the gathered rows.

    One backward pass. A gathered table gets no gradient of its own (the
    caller updates its rows); a weight recorded in `graph.weight_products`
    gets its gradient from one product (`engine.weight_products`).
    """
    products = graph.weight_products
    skip = {g.table.name for g in gathers} | {w.name for w in (products.weights if products else [])}
    params = [p for p in main.global_block().all_parameters() if not p.stop_gradient and p.name not in skip]
    outputs = products.outputs() if products else []
    values = params + [g.rows for g in gathers] + outputs
    grads = paddle.autograd.ir_backward.grad(objective, values, allow_unused=True)
    pairs = [(p, g) for p, g in zip(params, grads) if g is not None]
    row_grads = grads[len(params):len(params) + len(gathers)]
    if any(g is None for g in row_grads):
        raise RuntimeError("a gathered table does not reach the objective")
    if products:
        pairs += [(w, g) for w, g in products.weight_gradients(grads[len(params) + len(gathers):])
                  if not w.stop_gradient]
    return pairs, row_grads


def _row_wise_step(main, objective, graph: TrainGraph, gathers, optim: OptimConfig, lr, finish) -> None:
    """Backward and update with the gathered tables updated row-wise (`engine.row_tables`).

    Clipping moves out of the optimizer so the global norm covers the rows' gradients too.
    """
    optimizer = build_optimizer(dataclasses.replace(optim, grad_clip=0.0), lr)
    pairs, row_grads = _gradients(main, objective, graph, gathers)
    n = len(pairs)
    pairs = finish(pairs + list(zip([g.rows for g in gathers], row_grads)), objective)
    grads = [grad for _, grad in pairs]
    if optim.grad_clip > 0:
        grads = clip_by_global_norm(grads, optim.grad_clip)
    optimizer.apply_gradients([(param, grad) for (param, _), grad in zip(pairs[:n], grads[:n])])
    apply_row_updates(gathers, grads[n:], optim, optimizer._global_learning_rate())


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
