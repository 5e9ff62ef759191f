"""The biLM network: parameters, token encoders, the LSTMP cell, the stacked encoder.

Read top to bottom:

1. **Parameters** under the fluid release's names and creation order
   (`embedding_para`, `fw_layer1_gate_w`, `lstmp_0.w_0`, …, `softmax_weight`,
   `softmax_bias`), so its checkpoints load by name and ours load into users'
   programs with `paddle.static.load_vars`. lstmp_0..L-1 are the forward
   layers, lstmp_L..2L-1 the backward ones. A character model has the
   character encoder's variables (bilm-tf's names, `/` written `_`) in place
   of `embedding_para`.
2. **Token encoders** (the biLM's layer 0): a word table, bilm-tf's
   character CNN, or both concatenated and projected (ELMoForManyLangs).
3. **The LSTMP cell**, the fluid `lstmp` op rebuilt from primitives (Paddle 3
   dropped `dynamic_lstmp`; `paddle.nn.LSTM(proj_size=...)` cannot clip):

       z   = x_t·W_x + b + r_{t-1}·W          gate blocks along 4H: [c̃ | i | f | o]
       c_t = clip(tanh(z_c)·σ(z_i) + c_{t-1}·σ(z_f + forget_bias), ±cell_clip)
       h_t = σ(z_o)·tanh(c_t)
       r_t = clip(h_t·W_rh, ±proj_clip)                   (identity projection activation)

   No peepholes; `forget_bias` is 0 for the fluid release and TF's constant
   1.0 for bilm-tf imports (kept apart from the stored bias, so exporting them
   back is exact).
4. **One direction's stack** (dropout, residuals) and **the encoder**: all
   ELMo layers for padded sentences in bilm-tf's layout, every sentence from a
   zero state.

The language-model loss over these layers is `bilm.lm`; the API users embed
is `bilm.vectors`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle.nn.initializer import Constant, Normal, Uniform, XavierUniform

from bilm.config import BiLMConfig
from engine.ops import WeightProducts, affine
from reader.chars import CHARACTER_SPECIALS, Spelling, encoded_tokens

DIRECTIONS = ("fw", "bw")
EMBEDDING = "embedding_para"
SOFTMAX_WEIGHT = "softmax_weight"
SOFTMAX_BIAS = "softmax_bias"
CHAR_EMBED = "char_embed"
# The carried LSTM state, [2L, B, P] and [2L, B, H]: slots 0..L-1 forward, L..2L-1 backward.
INIT_HIDDEN, INIT_CELL = "init_hidden", "init_cell"
LENGTHS = "lengths"


def zero_states(cfg: BiLMConfig, batch_size: int) -> dict[str, np.ndarray]:
    """The initial `init_hidden` / `init_cell` feeds: every row starts from zero."""
    L, B = cfg.num_layers, batch_size
    return {INIT_HIDDEN: np.zeros((2 * L, B, cfg.embed_size), np.float32),
            INIT_CELL: np.zeros((2 * L, B, cfg.hidden_size), np.float32)}


def token_ids(sentences: list[list[str]], cfg: BiLMConfig, vocab) -> np.ndarray:
    """What a biLM takes for padded sentences: word ids [n,T] in `vocab` (a `reader.vocab.Vocabulary`;
    no boundary tokens, unknown words `<UNK>`), character ids [n,T,C], or for word+char input both,
    [n,T,1+C] (the word id first); padding is 0."""
    return encoded_tokens(sentences, vocab if cfg.input != "char" else None, spelling(cfg, vocab))


def spelling(cfg: BiLMConfig, vocab=None) -> Spelling | None:
    """How the model spells words (None for word input); `vocab` holds a `characters` spelling's
    character vocabulary (without it, one that knows the specials only: enough for `<S>` and `</S>`)."""
    if not cfg.spells:
        return None
    characters = ()
    if cfg.char_cnn.spelling == "characters":
        characters = vocab.characters if vocab is not None else CHARACTER_SPECIALS
    return Spelling(cfg.char_cnn.max_characters, characters)



# -- 1. parameters -------------------------------------------------------------------


def layer_names(cfg: BiLMConfig, direction: str, layer: int) -> dict[str, str]:
    """Variable names of one LSTMP layer (0-based `layer`)."""
    k = layer + (cfg.num_layers if direction == "bw" else 0)
    return {"gate_w": f"{direction}_layer{layer + 1}_gate_w", "weight": f"lstmp_{k}.w_0",
            "proj": f"lstmp_{k}.w_1", "bias": f"lstmp_{k}.b_0"}


def char_variable_shapes(cfg: BiLMConfig) -> dict[str, tuple[int, ...]]:
    """The character encoder's variable names → shapes (bilm-tf's), in bilm-tf's order."""
    c, n = cfg.char_cnn, cfg.char_cnn.num_features
    rows = c.num_characters if c.spelling == "characters" else Spelling().num_chars
    shapes: dict[str, tuple[int, ...]] = {CHAR_EMBED: (rows, c.embed_size)}
    for i, (width, count) in enumerate(c.filters):
        shapes[f"CNN_W_cnn_{i}"] = (1, width, c.embed_size, count)
        shapes[f"CNN_b_cnn_{i}"] = (count,)
    for k in range(c.n_highway):
        for gate in ("carry", "transform"):
            shapes[f"CNN_high_{k}_W_{gate}"] = (n, n)
            shapes[f"CNN_high_{k}_b_{gate}"] = (n,)
    if char_projected(cfg):
        shapes["CNN_proj_W_proj"] = (cfg.word_dim + n, cfg.embed_size)
        shapes["CNN_proj_b_proj"] = (cfg.embed_size,)
    return shapes


def char_projected(cfg: BiLMConfig) -> bool:
    """Whether the filter bank (with a word+char model's word vector before it) is projected to the
    LSTM input size."""
    return cfg.input == "word+char" or cfg.char_cnn.num_features != cfg.embed_size


def variable_shapes(cfg: BiLMConfig, with_softmax: bool = True) -> dict[str, tuple[int, ...]]:
    """Every biLM variable's name → shape, in the fluid creation order."""
    E, H, V = cfg.embed_size, cfg.hidden_size, cfg.vocab_size
    shapes = {EMBEDDING: (V, cfg.word_dim or E)} if cfg.input != "char" else {}
    if cfg.spells:
        shapes.update(char_variable_shapes(cfg))

    def add_direction(direction):
        for layer in range(cfg.num_layers):
            names = layer_names(cfg, direction, layer)
            shapes.update({names["gate_w"]: (E, 4 * H), names["weight"]: (E, 4 * H),
                           names["proj"]: (H, E), names["bias"]: (1, 4 * H)})

    add_direction("fw")
    if with_softmax:
        shapes[SOFTMAX_WEIGHT] = (V, E)
        shapes[SOFTMAX_BIAS] = (V,)
    add_direction("bw")
    return shapes


@dataclass(frozen=True)
class LSTMPWeights:
    """Parameters of one LSTMP layer (names as in the fluid release)."""

    gate_w: paddle.Tensor  # [in, 4H]  input projection (`fw_layer1_gate_w`, ...)
    weight: paddle.Tensor  # [P, 4H]   recurrent weight (`lstmp_k.w_0`)
    proj: paddle.Tensor  # [H, P]    projection (`lstmp_k.w_1`)
    bias: paddle.Tensor  # [1, 4H]   gate bias (`lstmp_k.b_0`)


@dataclass
class BiLMParams:
    """Handles to the biLM parameters inside the current static program."""

    variables: dict  # name → parameter
    layers: dict[str, list[LSTMPWeights]]  # per direction, bottom layer first

    def __getitem__(self, name: str):
        return self.variables[name]

    def get(self, name: str):
        return self.variables.get(name)


def create_params(cfg: BiLMConfig, with_softmax: bool = True, trainable: bool = True) -> BiLMParams:
    """Creates (or, in a second program, refers to) the biLM parameters by name.

    Programs built in the same scope share parameters through these names: the
    evaluation and export programs read what the training program trained.
    """
    if cfg.vocab_size <= 0:
        raise ValueError("BiLMConfig.vocab_size must be set before building a program")
    created = {name: _parameter(name, shape, trainable, _initializer(cfg, name))
               for name, shape in variable_shapes(cfg, with_softmax).items()}
    layers = {d: [LSTMPWeights(**{k: created[n] for k, n in layer_names(cfg, d, i).items()})
                  for i in range(cfg.num_layers)] for d in DIRECTIONS}
    return BiLMParams(created, layers)


def _initializer(cfg: BiLMConfig, name: str):
    if cfg.spells and name in char_variable_shapes(cfg):
        return _char_initializer(cfg, name)
    # The fluid release used Xavier everywhere except the LSTMP bias (zeros);
    # softmax_bias was created with is_bias=False, so it got Xavier as well.
    return Constant(0.0) if name.startswith("lstmp_") and name.endswith(".b_0") else XavierUniform()


def _char_initializer(cfg: BiLMConfig, name: str):
    """bilm-tf's training initialisation of each character-encoder variable."""
    c, n = cfg.char_cnn, cfg.char_cnn.num_features
    if name == CHAR_EMBED:
        return Uniform(-1.0, 1.0)
    if name.startswith("CNN_W_cnn_"):
        if c.activation == "relu":
            return Uniform(-0.05, 0.05)
        width = c.filters[int(name.rsplit("_", 1)[1])][0]
        return Normal(0.0, math.sqrt(1.0 / (width * c.embed_size)))
    if name.endswith("_b_carry"):
        return Constant(-2.0)  # start by carrying the input through
    if "_b_" in name:
        return Constant(0.0)
    return Normal(0.0, math.sqrt(1.0 / n))


def _parameter(name: str, shape: tuple[int, ...], trainable: bool, init):
    block = paddle.static.default_main_program().global_block()
    existing = next((p for p in block.all_parameters() if p.name == name), None)
    if existing is not None:  # e.g. `bilm.emb` made the table, `bilm.elmo_encoder` needs it too
        if tuple(existing.shape) != tuple(shape):
            raise ValueError(f"parameter '{name}' already exists with shape {list(existing.shape)}, "
                             f"not {list(shape)}")
        return existing
    attr = paddle.ParamAttr(name=name, initializer=init, trainable=trainable)
    return paddle.static.create_parameter(list(shape), "float32", attr=attr)


# -- 2. token encoders ---------------------------------------------------------------


def token_width(cfg: BiLMConfig) -> list[int]:
    """The trailing shape of one token's ids: [] (a word id), [C] (its spelling) or [1 + C] (both)."""
    C = cfg.char_cnn.max_characters
    return {"word": [], "char": [C], "word+char": [1 + C]}[cfg.input]


def token_input(name: str, cfg: BiLMConfig, batch: int = -1, steps: int = -1):
    """A feed for the biLM's tokens (int64): word ids [B,T], character ids [B,T,C], or for word+char
    input [B,T,1+C], each token's word id then its characters."""
    return paddle.static.data(name, [batch, steps, *token_width(cfg)], "int64")


def embed_tokens(params: BiLMParams, cfg: BiLMConfig, tokens):
    """[B,T,E] token vectors for the tokens of `token_input` (by `cfg.input`)."""
    if cfg.input == "char":
        return char_token_embedding(params, cfg, tokens)
    if cfg.input == "word+char":
        words = F.embedding(tokens[..., 0], params[EMBEDDING])
        return char_token_embedding(params, cfg, tokens[..., 1:], before=words)
    return F.embedding(tokens, params[EMBEDDING])


def boundary_embeddings(params: BiLMParams, cfg: BiLMConfig, bos_id: int, eos_id: int):
    """The `<S>` and `</S>` vectors, [1,E] each (from their word ids, or their spellings)."""
    if cfg.input == "word":
        tokens = np.array([[bos_id], [eos_id]], np.int64)  # [2,1]
    else:
        tokens = np.stack(spelling(cfg).boundaries())[:, None, :]  # [2,1,C]: no character list needed
        if cfg.input == "word+char":
            tokens = np.concatenate([np.array([[[bos_id]], [[eos_id]]], np.int64), tokens], axis=-1)
    both = embed_tokens(params, cfg, paddle.assign(tokens))  # [2,1,E]
    return both[0], both[1]


def char_token_embedding(params: BiLMParams, cfg: BiLMConfig, char_ids, before=None):
    """The character encoder: token vectors [..., E] for character ids [..., C] (`reader.chars`).

    bilm-tf's: a 16-wide embedding per character (a fixed zero row first,
    read by padded token positions, whose vectors are therefore not zero:
    callers mask them), a bank of valid convolutions each max-pooled over the
    token's positions and activated, highway layers, and a projection when the
    bank is wider than the LSTM input. With `characters` spelling the table is
    the model's own, `<pad>` row included. `before` (word+char input: the word
    vectors [..., word_dim]) is concatenated before the features, and the two
    are projected together.
    """
    c = cfg.char_cnn
    table = params[CHAR_EMBED]
    if c.spelling == "bytes":
        table = paddle.concat([paddle.zeros([1, c.embed_size], "float32"), table], axis=0)
    chars = F.embedding(char_ids, table)  # [..., C, D]
    flat = len(chars.shape) == 3  # [N, C, D]: treat as one row of N tokens
    if flat:
        chars = chars.unsqueeze(0)
    # bilm-tf's conv2d over [B, T, C, D] with (1, w, D, n) kernels, in NCHW:
    # no reshape of the batch (paddle.inference mis-sizes tensors reshaped
    # back from a flattened batch) and no NHWC (its layout pass then reduces
    # over the wrong axis).
    chars = paddle.transpose(chars, [0, 3, 1, 2])  # [B, D, T, C]
    pooled, biases = [], []
    for i, (width, _) in enumerate(c.filters):
        kernel = paddle.transpose(params[f"CNN_W_cnn_{i}"], [3, 2, 0, 1])  # [n, D, 1, w]: no flip
        conv = F.conv2d(chars, kernel)  # [B, n, T, C - w + 1]
        # Max over positions as a pooling op: Paddle's reduce-max gradient is
        # about 20x slower on CPU and made the filter bank dominate training.
        pooled.append(F.max_pool2d(conv, kernel_size=[1, c.max_characters - width + 1]))
        # The bias is constant over positions: adding it after the max is exact and cheaper.
        biases.append(params[f"CNN_b_cnn_{i}"])
    h = paddle.transpose(paddle.concat(pooled, axis=1).squeeze(3), [0, 2, 1])  # [B, T, features]
    h = paddle.concat(biases) + h
    h = F.relu(h) if c.activation == "relu" else paddle.tanh(h)
    for k in range(c.n_highway):
        gate = F.sigmoid(_char_linear(params, h, f"CNN_high_{k}", "carry"))
        transformed = F.relu(_char_linear(params, h, f"CNN_high_{k}", "transform"))
        h = gate * transformed + (1.0 - gate) * h
    if before is not None:
        h = paddle.concat([before.unsqueeze(0) if flat else before, h], axis=-1)
    if char_projected(cfg):
        h = _char_linear(params, h, "CNN_proj", "proj")
    return h.squeeze(0) if flat else h


def _char_linear(params: BiLMParams, x, scope: str, what: str):
    return paddle.matmul(x, params[f"{scope}_W_{what}"]) + params[f"{scope}_b_{what}"]


# -- 3. the LSTMP cell ---------------------------------------------------------------


@dataclass(frozen=True)
class LSTMP:
    """One layer: its weights, clipping thresholds (0 disables a clip) and forget-gate offset.

    `weights` is one direction's `LSTMPWeights` (states [B, …]), or a tuple of
    them run side by side (states [G, B, …]: both directions of the biLM at
    once, each step one batched product and one set of elementwise ops
    instead of two). Side by side is what inference runs (1.2× faster on
    the exported program); training runs one direction at a time, where
    Paddle 3.3.1's batched-product gradients made the step slower than two
    fused `addmm`s (measured: 0.87 s against 0.77 s for `bench/elmo_train.py`).
    """

    weights: LSTMPWeights | tuple
    cell_clip: float
    proj_clip: float
    forget_bias: float = 0.0  # fluid: none; TF's LSTMCell (bilm-tf models): 1.0
    # Training: the recurrent and projection products go through the engine's
    # `WeightProducts`, which forms their weight gradients in one product each.
    products: WeightProducts | None = None

    def group(self, name: str):
        """One weight (`gate_w`, `weight`, `proj`, `bias`) of every direction: the parameter, or a tuple."""
        if isinstance(self.weights, tuple):
            return tuple(getattr(w, name) for w in self.weights)
        return getattr(self.weights, name)

    def stacked(self, name: str):
        """That weight as one tensor: the parameter, or the directions' stacked along a new first axis."""
        group = self.group(name)
        return paddle.stack(list(group)) if isinstance(group, tuple) else group


@dataclass(frozen=True)
class _Cell:
    """A layer ready to step: its gate pre-activation z = x·W_x + b + r·W, its projection, and its clips."""

    layer: LSTMP
    gates: object  # (x·W_x + b, r) → z
    project: object  # h → h·W_rh


def _cell(layer: LSTMP) -> _Cell:
    mm = layer.products
    if isinstance(layer.weights, tuple):  # directions side by side: batched products
        if mm is not None:
            raise ValueError("recorded weight products take one direction at a time")
        # Stacked once for the sequence, not once a step.
        weight, proj = layer.stacked("weight"), layer.stacked("proj")
        return _Cell(layer, lambda g, r: g + paddle.matmul(r, weight), lambda h: paddle.matmul(h, proj))
    w = layer.weights
    if mm is not None:
        return _Cell(layer, lambda g, r: mm.addmm(g, r, w.weight), lambda h: mm.matmul(h, w.proj))
    return _Cell(layer, lambda g, r: paddle.addmm(g, r, w.weight), lambda h: paddle.matmul(h, w.proj))


def lstmp_step(cell: _Cell, gates_x, r_prev, c_prev):
    """One step. `gates_x` [B,4H] already holds x·W_x + b; returns (r_t [B,P], c_t [B,H])."""
    layer = cell.layer
    z = cell.gates(gates_x, r_prev)
    # `split` rather than slicing: its gradient is one concat, where every
    # slice's gradient would write a zero-filled copy of the whole input.
    z_c, z_i, z_f, z_o = paddle.split(z, 4, axis=-1)
    if layer.forget_bias:
        z_f = z_f + layer.forget_bias
    c = paddle.tanh(z_c) * F.sigmoid(z_i) + c_prev * F.sigmoid(z_f)
    if layer.cell_clip > 0:
        c = paddle.clip(c, -layer.cell_clip, layer.cell_clip)
    h = F.sigmoid(z_o) * paddle.tanh(c)
    r = cell.project(h)
    if layer.proj_clip > 0:
        r = paddle.clip(r, -layer.proj_clip, layer.proj_clip)
    return r, c


def lstmp_sequence(layer: LSTMP, x, r0, c0, mask=None, reset=None, portable: bool = False):
    """Runs the layer over `x` [B,T,in] from state (r0 [B,P], c0 [B,H]).

    Returns (r [B,T,P], r_last [B,P], c_last [B,H]); a layer of G directions
    takes and returns [G, B, …] throughout.
    - `mask` [B,T] (1 = real token, 0 = padding): padding steps leave the state
      unchanged and output zeros, so a row's final state is the state after
      its last real token.
    - `reset` [B,T] ([G,B,T] for G directions; 0 = start from a zero state at
      this step, 1 = carry on): lets a stream of sentences start every sentence afresh.

    The input projection x·W_x + b runs for all steps at once. A static T
    (training, fixed `num_steps`) is unrolled in Python, which runs fastest; a
    dynamic T (inference on sentences of any length) becomes a `while_loop`;
    `portable` builds that loop from ops paddle2onnx converts (for ONNX export;
    Paddle itself runs the default 5–10 % faster).
    """
    steps = x.shape[-2]
    if steps is not None and steps > 0:
        return _unrolled(_cell(layer), _input_gates(layer, x), r0, c0, mask, reset, steps)
    return _while_loop(_cell(layer), x, r0, c0, mask, reset, portable)


def _input_gates(layer: LSTMP, x):
    """x·W_x + b for every step at once (same layout as `x`); in a training program (one with
    `products`) as one product, whose gradient is the cheaper (`engine.ops.affine`)."""
    return affine(x, layer.stacked("gate_w"), layer.stacked("bias"), training=layer.products is not None)


def _step(cell, g, r, c, m, keep):
    if keep is not None:
        r, c = r * keep, c * keep
    r_new, c_new = lstmp_step(cell, g, r, c)
    if m is None:
        return r_new, c_new, r_new
    # m is [B,1]: padding rows keep their state and emit zeros.
    r = m * r_new + (1.0 - m) * r
    c = m * c_new + (1.0 - m) * c
    return r, c, m * r_new


def _per_step(v, steps: int) -> list:
    """A [..., T] mask or reset as T pieces [..., 1] (None: none)."""
    return [None] * steps if v is None else paddle.split(v, steps, axis=-1)


def _unrolled(cell, gates, r, c, mask, reset, steps):
    time = len(gates.shape) - 2  # [B, T, 4H], or [G, B, T, 4H] for G directions
    per_step = paddle.unbind(gates, axis=time)  # one op; its gradient is one stack
    masks, keeps = _per_step(mask, steps), _per_step(reset, steps)
    outputs = []
    for t in range(steps):
        r, c, out = _step(cell, per_step[t], r, c, masks[t], keeps[t])
        outputs.append(out)
    return paddle.stack(outputs, axis=time), r, c


def _while_loop(cell, x, r0, c0, mask, reset, portable):
    if cell.layer.products is not None:
        raise ValueError("recorded weight products need a fixed number of steps (unrolled)")

    def time_major(v):  # [..., T] → [T, ..., 1]
        return None if v is None else paddle.transpose(v, [len(v.shape) - 1, *range(len(v.shape) - 1)]).unsqueeze(-1)

    # The steps read the gates along their time axis, swapped with the batch
    # axis before the input projection ([T, B, 4H], or [G, T, B, 4H]):
    # swapping x moves a quarter of the bytes that swapping the gates would.
    time = len(x.shape) - 2
    swap = list(range(len(x.shape)))
    swap[time - 1], swap[time] = time, time - 1
    gates = _input_gates(cell.layer, paddle.transpose(x, swap))
    steps = _size(gates, time - 1)
    mask_t, reset_t = time_major(mask), time_major(reset)
    if portable:
        # paddle2onnx lowers a loop that writes a carried [T, …, P] buffer to
        # an ONNX Loop, but not one that writes a tensor array.
        column = paddle.zeros([steps], "float32").reshape([-1] + [1] * len(r0.shape))
        outputs = column + paddle.zeros_like(r0).unsqueeze(0)
    else:
        outputs = paddle.tensor.create_array("float32")

    def cond(i, r, c, outputs):
        return i < steps

    def body(i, r, c, outputs):
        m = None if mask_t is None else mask_t[i]
        keep = None if reset_t is None else reset_t[i]
        r, c, out = _step(cell, gates[i] if time == 1 else gates[:, i], r, c, m, keep)
        if portable:
            outputs = paddle.scatter(outputs, i.reshape([1]), out.unsqueeze(0), overwrite=True)
        else:
            paddle.tensor.array_write(out, i, outputs)
        return i + 1, r, c, outputs

    i0 = paddle.full([], 0, "int64")
    _, r, c, outputs = paddle.static.nn.while_loop(cond, body, [i0, r0, c0, outputs])
    if portable:
        return paddle.transpose(outputs, [*range(1, time + 1), 0, *range(time + 1, len(outputs.shape))]), r, c
    stacked, _ = paddle.tensor.manipulation.tensor_array_to_tensor(outputs, axis=time, use_stack=True)
    return stacked, r, c


# -- 4. the stack and the encoder ------------------------------------------------------


@dataclass
class StackOutput:
    """What the LSTMP stack produces (for G directions side by side, each value has a leading [G])."""

    layers: list  # per layer [B,T,P]: LSTMP output plus residual, before output dropout
    top: object  # [B,T,P]: what the softmax sees (last layer after dropout)
    last_hidden: list  # per layer [B,P]: raw LSTMP output r at the last step
    last_cell: list  # per layer [B,H]


def run_stack(x, layers: list, cfg: BiLMConfig, init_hidden, init_cell, dropout=None, mask=None, reset=None,
              products=None, portable: bool = False) -> StackOutput:
    """Runs the LSTMP layers over embedded tokens `x` [B,T,E].

    `layers` holds each layer's `LSTMPWeights`, or a tuple of G directions'
    (then `x` is [G,B,T,E] and states are [G,B,…]: `encode` runs both
    directions this way). `init_hidden`/`init_cell` are per-layer lists of
    [B,P]/[B,H] start states; `mask` and `reset` are passed to every layer
    (see `lstmp_sequence`). As in the fluid release, each layer's input
    a = drop(x) is dropped once more before the LSTMP, the residual (from the
    second layer on) adds a, and the layer output is dropped again before it
    feeds the next layer or the softmax. The carried state is the raw
    projection r before the residual and the cell c itself (the fluid release
    carried a dropped-out copy of c). `dropout` is an `engine.ops.StepDropout`
    (training) or None; `products` (an `engine.ops.WeightProducts`, training
    only) records the recurrent products for one-product weight gradients;
    `portable`: see `lstmp_sequence`.
    """
    dropout = dropout or (lambda v: v)
    inp = x
    outputs, last_r, last_c = [], [], []
    for i, weights in enumerate(layers):
        a = dropout(inp)
        layer = LSTMP(weights, cfg.cell_clip, cfg.proj_clip, cfg.forget_bias, products)
        r, r_last, c_last = lstmp_sequence(layer, dropout(a), init_hidden[i], init_cell[i], mask, reset, portable)
        out = r + a if cfg.use_skip_connections and i > 0 else r
        if mask is not None and cfg.use_skip_connections and i > 0:
            out = out * mask.unsqueeze(-1)
        outputs.append(out)
        last_r.append(r_last)
        last_c.append(c_last)
        inp = dropout(out)
    return StackOutput(outputs, inp, last_r, last_c)


def direction_pairs(params: BiLMParams) -> list[tuple]:
    """Each layer's (forward, backward) weights: the biLM's stack run as two directions side by side."""
    return list(zip(*(params.layers[d] for d in DIRECTIONS)))


def paired_states(states, cfg: BiLMConfig) -> list:
    """Per layer, the forward and backward slots of a [2L, B, …] state feed as [2, B, …]."""
    L = cfg.num_layers
    return [paddle.stack([states[i], states[L + i]]) for i in range(L)]


def unpaired_states(per_layer: list):
    """Per-layer [2, B, …] states back to the [2L, B, …] layout (slots 0..L-1 forward)."""
    return paddle.stack([s[0] for s in per_layer] + [s[1] for s in per_layer])


@dataclass
class EncoderOutput:
    """ELMo layers plus each row's final LSTM state (for stateful use)."""

    layers: object  # [B, L+1, T, 2P]
    final_hidden: object | None  # [2L, B, P]: slots 0..L-1 forward, L..2L-1 backward (stateful use)
    final_cell: object | None  # [2L, B, H]


@dataclass
class EncoderGraph:
    """A built encoder program: its feeds by name and its outputs."""

    feeds: dict  # token ids (`token_feed_name`), `lengths`, and with state `init_hidden`/`init_cell`
    output: EncoderOutput


def build_encoder(cfg: BiLMConfig, bos_id: int, eos_id: int, stateful: bool = False,
                  max_length: int | None = None, portable: bool = False) -> EncoderGraph:
    """The ELMo encoder over fed sentences (what `ElmoEmbedder`, `python -m bilm dump` and the export run).

    Feeds: word ids [B,T] (`word_ids`) or character ids [B,T,C] (`char_ids`),
    without boundaries, and `lengths` [B]; `stateful` adds `init_hidden`
    [2L,B,P] / `init_cell` [2L,B,H] to start each row from. Any T, with a
    while loop over the steps; with `max_length` the inputs are padded to
    that T and the recurrence is unrolled, which runs faster. `portable`:
    a program ONNX export converts (see `lstmp_sequence`).
    """
    tokens = token_input(token_feed_name(cfg), cfg, steps=max_length or -1)
    feeds = {tokens.name: tokens, LENGTHS: paddle.static.data(LENGTHS, [-1], "int64")}
    if stateful:
        L = cfg.num_layers
        feeds[INIT_HIDDEN] = paddle.static.data(INIT_HIDDEN, [2 * L, -1, cfg.embed_size], "float32")
        feeds[INIT_CELL] = paddle.static.data(INIT_CELL, [2 * L, -1, cfg.hidden_size], "float32")
    params = create_params(cfg, with_softmax=False)
    output = encode(params, cfg, tokens, feeds[LENGTHS], bos_id, eos_id, feeds.get(INIT_HIDDEN),
                    feeds.get(INIT_CELL), portable)
    return EncoderGraph(feeds, output)


def token_feed_name(cfg: BiLMConfig) -> str:
    """The encoder's token input: `word_ids`, `char_ids` for a character model, `word_char_ids` for
    word+char input."""
    return {"word": "word_ids", "char": "char_ids", "word+char": "word_char_ids"}[cfg.input]


def encode(params: BiLMParams, cfg: BiLMConfig, tokens, lengths, bos_id: int | None = None,
           eos_id: int | None = None, init_hidden=None, init_cell=None, portable: bool = False) -> EncoderOutput:
    """All ELMo layers for tokens and lengths [B] (int64), bilm-tf's layout.

    `tokens` are word ids [B,T] or, for a character model, character ids
    [B,T,C]. Layer 0 is the token embedding duplicated to [e ; e], layer k the
    k-th LSTM layer as [forward ; backward] (residual included), each 2·P
    wide. With `bos_id`/`eos_id` given, sentences are wrapped in `<S>` …
    `</S>` inside the program and the output covers the words only; without
    them, `tokens` are used as they are. Rows start from `init_hidden`
    [2L,B,P] / `init_cell` [2L,B,H] when given, else from zeros, so a
    sentence's vectors never depend on its batch neighbours. With initial
    states the output also has the final ones: those after each row's last
    real step (forward: `</S>`; backward: `<S>`), padding never changing them.
    `portable`: see `lstmp_sequence`.
    """
    emb = embed_tokens(params, cfg, tokens)
    if bos_id is None:
        return encode_embedded(params, cfg, emb, lengths, None, init_hidden, init_cell, portable)
    bos, eos = boundary_embeddings(params, cfg, bos_id, eos_id)
    return encode_embedded(params, cfg, wrap_embedded(emb, lengths, bos, eos), lengths + 2, lengths,
                           init_hidden, init_cell, portable)


def encode_embedded(params: BiLMParams, cfg: BiLMConfig, emb, lengths, word_lengths=None,
                    init_hidden=None, init_cell=None, portable: bool = False) -> EncoderOutput:
    """`encode` from token vectors [B,T,E]; `word_lengths` given: strip the boundary positions.

    Both directions run side by side (`run_stack` on [2,B,T,E]). Each reads
    its sentence from the start (the backward one reversed within its
    length), so padding comes after every real step and never reaches a real
    output: the steps need no masking unless the final states are wanted
    (`init_hidden` given: stateful use), and the padding positions' outputs
    are zeroed once at the end.
    """
    steps = _size(emb, 1)
    mask = sentence_mask(lengths, steps)
    emb = emb * mask.unsqueeze(-1)
    x = paddle.stack([emb, reverse_padded(emb, lengths)])  # [2, B, T, E]
    if init_hidden is None:
        step_mask = None
        rows = _size(emb, 0)
        # One zero state per layer: a while loop takes over its initial values' memory.
        h0 = [paddle.zeros([2, rows, cfg.embed_size], "float32") for _ in range(cfg.num_layers)]
        c0 = [paddle.zeros([2, rows, cfg.hidden_size], "float32") for _ in range(cfg.num_layers)]
    else:
        step_mask, h0, c0 = mask, paired_states(init_hidden, cfg), paired_states(init_cell, cfg)
    out = run_stack(x, direction_pairs(params), cfg, h0, c0, mask=step_mask, portable=portable)
    layers = [paddle.concat([emb, emb], axis=-1)]
    layers += [paddle.concat([o[0], reverse_padded(o[1], lengths)], axis=-1) for o in out.layers]
    out_layers = paddle.stack(layers, axis=1)
    if word_lengths is not None:
        # Drop the boundary positions; `</S>` of shorter sentences sits inside
        # the window, so zero everything past each sentence's last word.
        out_layers = out_layers[:, :, 1 : steps - 1] * sentence_mask(word_lengths, steps - 2).unsqueeze(1).unsqueeze(-1)
    elif step_mask is None:
        out_layers = out_layers * mask.unsqueeze(1).unsqueeze(-1)
    if step_mask is None:
        return EncoderOutput(out_layers, None, None)
    return EncoderOutput(out_layers, unpaired_states(out.last_hidden), unpaired_states(out.last_cell))


def wrap_embedded(x_emb, lengths, bos, eos):
    """[B,T,E] token vectors → [B,T+2,E] with `bos` [1,E] first and `eos` [1,E] after each sentence."""
    rows = paddle.shape(x_emb)[0]
    bos = paddle.expand(bos.unsqueeze(0), [rows, 1, bos.shape[-1]])
    x = paddle.concat([bos, x_emb, paddle.zeros_like(bos)], axis=1)
    t = paddle.arange(_size(x, 1), dtype="int64").unsqueeze(0)
    at_end = (t == lengths.unsqueeze(1) + 1).unsqueeze(-1)
    return paddle.where(at_end, eos.unsqueeze(0), x)  # broadcast: no expand to a shape with -1 (ONNX)


def sentence_mask(lengths, steps):
    """[B,T] float32: 1 for positions < length."""
    t = paddle.arange(steps, dtype="int64").unsqueeze(0)
    return paddle.cast(t < lengths.unsqueeze(1), "float32")


def reverse_padded(x, lengths):
    """Reverses each row's first `length` positions of x [B,T,...]; padding stays in place."""
    t = paddle.arange(_size(x, 1), dtype="int64").unsqueeze(0)
    length = lengths.unsqueeze(1)
    index = paddle.where(t < length, length - 1 - t, t)
    if len(x.shape) == 2:
        return paddle.take_along_axis(x, index, axis=1)
    index = paddle.expand(index.unsqueeze(-1), [_size(x, 0), _size(x, 1), x.shape[-1]])
    return paddle.take_along_axis(x, index, axis=1)



def _size(x, axis: int):
    """`x`'s size along `axis`: a Python int where the program fixes it (an unrolled export: its
    index ranges become constants), else a tensor."""
    size = x.shape[axis]
    return size if size is not None and size > 0 else paddle.shape(x)[axis]
