"""Rewrites of converted ONNX graphs that make them faster in ONNX Runtime and compute the same.

`scan_outputs`: paddle2onnx lowers a `while_loop` that collects its steps'
outputs (the biLM's any-length recurrence, `bilm.model`) to an ONNX `Loop`
carrying a [T, …] buffer that a `ScatterND` writes a row of on every step.
ONNX Runtime copies the whole buffer at each step, T² rows in all; a Loop's
scan output appends the row instead (docs/benchmarks.md measures it).

`matrix_products`: ONNX Runtime packs a constant weight for its GEMM once,
when the session starts, only where the weight is a matrix; a product with a
stack of weights [S, K, N] (the biLM's two directions side by side, one
product a step) packs every matrix again at every call. S products with one
matrix each, between a Split and a Concat, compute the same.
"""

from __future__ import annotations

import numpy as np


def scan_outputs(model) -> int:
    """Turns each row-by-row buffer of `model`'s Loops into a scan output, in place; returns how many.

    Only a buffer written at the loop's own counter (a carried value that starts
    at 0 and steps by 1) is rewritten: its rows are then the steps in order,
    which is what a scan output holds.
    """
    loops = [node for node in model.graph.node if node.op_type == "Loop"]
    constants = _constants(model.graph) if loops else {}
    rewritten = 0
    for node in loops:
        body = next(a.g for a in node.attribute if a.name == "body")
        while _rewrite_one(node, body, {**constants, **_constants(body)}):
            rewritten += 1
    return rewritten


def matrix_products(model, base_dir: str | None = None) -> int:
    """Splits each MatMul of an input known to be [S, M, K] by a constant stack of S weights [S, K, N]
    into S products with one weight matrix each, in place (in the graph and in its loops' bodies);
    returns how many. The matrices become initializers of the main graph, read from `base_dir` where
    the stack is stored outside the graph; a stack nothing else reads is dropped."""
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    stacks = {t.name: t for t in graph.initializer if len(t.dims) == 3 and t.dims[0] > 1}
    if not stacks:
        return 0
    shapes = _known_shapes(onnx.shape_inference.infer_shapes(model).graph)
    taken = _names(graph)
    matrices: dict = {}  # stack name → its matrices' names

    def split(stack) -> list:
        if stack.name not in matrices:
            array = numpy_helper.to_array(stack, base_dir or "")
            names = [_fresh(f"{stack.name}.{s}", taken) for s in range(len(array))]
            graph.initializer.extend(numpy_helper.from_array(np.ascontiguousarray(m), n)
                                     for m, n in zip(array, names))
            matrices[stack.name] = names
        return matrices[stack.name]

    rewritten = 0
    # Inner graphs first: rebuilding a graph's node list copies its nodes, bodies included.
    for g in reversed(list(_graphs(graph))):
        nodes = []
        for node in g.node:
            stack = stacks.get(node.input[1]) if node.op_type == "MatMul" else None
            known = shapes.get(node.input[0]) if stack is not None else None
            if known is None or len(known) != 3 or known[0] != stack.dims[0]:
                nodes.append(node)
                continue
            parts = [_fresh(f"{node.output[0]}.in{s}", taken) for s in range(stack.dims[0])]
            products = [_fresh(f"{node.output[0]}.out{s}", taken) for s in range(stack.dims[0])]
            nodes.append(onnx.helper.make_node("Split", [node.input[0]], parts, axis=0))
            nodes.extend(onnx.helper.make_node("MatMul", [part, weight], [out])
                         for part, weight, out in zip(parts, split(stack), products))
            nodes.append(onnx.helper.make_node("Concat", products, list(node.output), axis=0))
            rewritten += 1
        del g.node[:]
        g.node.extend(nodes)
    read = {name for g in _graphs(graph) for node in g.node for name in node.input}
    for name in matrices:
        if name not in read:
            graph.initializer.remove(stacks[name])
    return rewritten


def _graphs(graph):
    """`graph` and every graph inside its nodes (loop bodies, branches), depth first."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            for sub in [attribute.g] if attribute.HasField("g") else attribute.graphs:
                yield from _graphs(sub)


def _known_shapes(graph) -> dict:
    """{name: [dim or None]} of every value shape inference typed, in `graph` and the graphs inside it."""
    shapes = {}
    for g in _graphs(graph):
        for value in [*g.input, *g.value_info, *g.output]:
            if value.type.tensor_type.HasField("shape"):
                shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None
                                      for d in value.type.tensor_type.shape.dim]
    for t in graph.initializer:
        shapes[t.name] = list(t.dims)
    return shapes


def _names(graph) -> set:
    """Every value name in `graph` and the graphs inside it."""
    names = set()
    for g in _graphs(graph):
        names.update(t.name for t in g.initializer)
        names.update(v.name for v in g.input)
        for node in g.node:
            names.update(node.input)
            names.update(node.output)
    return names


def _fresh(name: str, taken: set) -> str:
    """`name`, or `name` with a numbered suffix where a value already has it; then taken."""
    candidate, k = name, 0
    while candidate in taken:
        k += 1
        candidate = f"{name}.{k}"
    taken.add(candidate)
    return candidate


def _rewrite_one(loop, body, constants: dict) -> bool:
    carried = [i.name for i in body.input[2:]]  # after the iteration number and the condition
    outputs = [o.name for o in body.output[1:len(carried) + 1]]
    producers = {out: node for node in body.node for out in node.output}
    for scatter in body.node:
        if scatter.op_type != "ScatterND" or scatter.input[0] not in carried:
            continue
        k = carried.index(scatter.input[0])
        if outputs[k] != scatter.output[0] or sum(scatter.input[0] in n.input for n in body.node) != 1:
            continue
        row = producers.get(scatter.input[2])
        index = producers.get(scatter.input[1])
        if row is None or row.op_type != "Unsqueeze" or index is None or index.op_type != "Reshape":
            continue
        counter = index.input[0]
        if counter not in carried or not _counts_from_zero(loop, carried.index(counter), outputs, producers,
                                                            constants, carried):
            continue
        _move_to_scan(loop, body, k, row.input[0])
        body.node.remove(scatter)
        return True
    return False


def _counts_from_zero(loop, c: int, outputs: list, producers: dict, constants: dict, carried: list) -> bool:
    """Whether carried value `c` starts at 0 and its next value is itself + 1 (through casts and a ×1)."""
    if _scalar(constants, loop.input[2 + c]) != 0.0:
        return False
    name, step = outputs[c], 0.0
    while name != carried[c]:
        node = producers.get(name)
        if node is None or node.op_type not in ("Cast", "Add", "Mul", "Identity"):
            return False
        if node.op_type in ("Cast", "Identity"):
            name = node.input[0]
            continue
        known = [_scalar(constants, i) for i in node.input]
        if sum(v is not None for v in known) != 1 or any(i in constants and v is None
                                                          for i, v in zip(node.input, known)):
            return False
        value = next(v for v in known if v is not None)
        if node.op_type == "Mul" and value != 1.0:
            return False
        step += value if node.op_type == "Add" else 0.0
        name = next(i for i, v in zip(node.input, known) if v is None)
    return step == 1.0


def _move_to_scan(loop, body, k: int, row: str) -> None:
    """Drops carried value `k` from `loop` and its body; the body's `row` becomes a scan output that takes
    the Loop's output name."""
    from onnx import helper

    scan = f"{row}.scan_row"
    body.node.append(helper.make_node("Identity", [row], [scan]))
    elem_type = body.output[1 + k].type.tensor_type.elem_type
    del body.input[2 + k]
    del body.output[1 + k]
    body.output.append(helper.make_tensor_value_info(scan, elem_type, None))
    del loop.input[2 + k]
    names = list(loop.output)
    names.append(names.pop(k))  # scan outputs come after the carried ones
    del loop.output[:]
    loop.output.extend(names)


def _constants(graph) -> dict:
    """{name: TensorProto} of `graph`'s initializers and Constant nodes (read only where asked)."""
    values = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = node.attribute[0].t
    return values


def _scalar(constants: dict, name: str) -> float | None:
    """The value of a one-element constant `name`, else None."""
    from onnx import TensorProto, numpy_helper

    tensor = constants.get(name)
    if tensor is None or tensor.data_location == TensorProto.EXTERNAL or int(np.prod(tensor.dims)) != 1:
        return None
    return float(numpy_helper.to_array(tensor).reshape(()))
