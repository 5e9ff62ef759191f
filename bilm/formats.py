"""The biLM's file formats: our model directories, and bilm-tf / AllenNLP's.

**A model directory** holds `model.json` (the `BiLMConfig`), `vocab.txt`,
`characters.json` for a model with its own character vocabulary (a JSON list
in id order, `reader.chars.CHARACTER_SPECIALS` first: ELMoForManyLangs
imports), and one tensor file per biLM variable under its fluid name. Checkpoints are
model directories too (with optimizer state on top), so any tool that takes
`--model DIR` accepts either.

**A bilm-tf model** is `options.json` + `weights.hdf5` (TF variable names),
its tokens encoded either by the character CNN in `weights.hdf5` (the
published models) or by a token-embedding HDF5 (dataset `embedding`, one row
per vocabulary line). Its LSTM cell is TF's `LSTMCell` with a projection:

    z = [x, h_prev] · W_0 + B          gate blocks [i | j | f | o], j the candidate
    c = σ(f + 1.0)·c_prev + σ(i)·tanh(j)   (forget_bias 1.0 is not stored in B)

Ours splits W_0 into the input projection (first `in_dim` rows) and the
recurrent weight (the rest), orders the gate blocks [j | i | f | o], and keeps
TF's forget-gate constant in `BiLMConfig.forget_bias` instead of folding it
into the bias, so converting back and forth is exact. The character encoder's
variables keep their names (`/` written `_`) and shapes. bilm-tf does not
publish its softmax, so imported models can embed but not compute perplexities.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from bilm.config import BiLMConfig, CharCNNConfig
from bilm.model import (
    CHAR_EMBED,
    EMBEDDING,
    SOFTMAX_WEIGHT,
    char_projected,
    char_variable_shapes,
    layer_names,
    variable_shapes,
)
from engine.atomic import atomic_directory
from engine.config import from_dict, read_json, write_json
from engine.errors import CheckpointError, ConfigError, DataError
from engine.variables import check_directory, get_value, load_variables, read_tensor, read_tensor_header, write_tensor
from reader.chars import NUM_CHARS, Spelling
from reader.vocab import SPECIAL_TOKENS, Vocabulary

MODEL_FILE, VOCAB_FILE, CHARACTERS_FILE = "model.json", "vocab.txt", "characters.json"
OPTIONS, WEIGHTS, TOKEN_EMBEDDINGS = "options.json", "weights.hdf5", "token_embeddings.hdf5"


# -- model directories ------------------------------------------------------------------


def save_model_config(cfg: BiLMConfig, directory: str | Path) -> None:
    """Writes `model.json` into a model directory."""
    write_json(Path(directory, MODEL_FILE), cfg)


def load_model_config(directory: str | Path) -> BiLMConfig:
    """Reads `model.json` from a model or checkpoint directory."""
    path = Path(directory, MODEL_FILE)
    data = read_json(path, f"{directory} is not a biLM model directory (no {MODEL_FILE})")
    return from_dict(BiLMConfig, data, source=str(path), prefix="model.")


def write_model_files(directory: Path, cfg: BiLMConfig, vocab: Vocabulary) -> None:
    """The files that make a directory of variables a self-describing model."""
    save_model_config(cfg, directory)
    vocab.save(Path(directory, VOCAB_FILE))
    if vocab.characters:
        write_json(Path(directory, CHARACTERS_FILE), list(vocab.characters))


def read_characters(path: str | Path) -> tuple[str, ...]:
    """A character vocabulary: a `characters.json` file, or a model directory's (empty when it has none)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHARACTERS_FILE
        if not path.is_file():
            return ()
    entries = read_json(path)
    if not isinstance(entries, list) or not all(isinstance(c, str) and c for c in entries):
        raise ConfigError(f"{path}: expected a JSON list of characters (non-empty strings)")
    if len(set(entries)) != len(entries):
        duplicate = next(c for i, c in enumerate(entries) if c in entries[:i])
        raise ConfigError(f"{path}: duplicate entry {duplicate!r}")
    Spelling(characters=tuple(entries))  # checks the specials come first
    return tuple(entries)


def write_model_dir(directory: Path, cfg: BiLMConfig, vocab: Vocabulary, scope=None) -> Path:
    """Writes the biLM variables of the scope + config + vocabulary, atomically."""
    arrays = {name: get_value(name, scope) for name in variable_shapes(cfg, with_softmax=True)}
    return write_model_arrays(directory, cfg, vocab, arrays)


def write_model_arrays(directory: Path, cfg: BiLMConfig, vocab: Vocabulary,
                       arrays: dict[str, np.ndarray]) -> Path:
    """Writes a model directory from arrays (a model without a softmax omits its two variables)."""
    expected = variable_shapes(cfg, with_softmax=SOFTMAX_WEIGHT in arrays)
    for name, shape in expected.items():
        if tuple(arrays[name].shape) != shape:
            raise CheckpointError(f"variable '{name}' has shape {list(arrays[name].shape)}, "
                                  f"the model needs {list(shape)}")
    with atomic_directory(directory) as tmp:
        for name in expected:
            write_tensor(tmp / name, np.asarray(arrays[name], np.float32))
        write_model_files(tmp, cfg, vocab)
    return Path(directory)


def read_model_arrays(directory: str | Path, cfg: BiLMConfig) -> dict[str, np.ndarray]:
    """The biLM variables of a model directory (with the softmax if it has one)."""
    with_softmax = Path(directory, SOFTMAX_WEIGHT).is_file()
    files = check_directory(directory, variable_shapes(cfg, with_softmax))
    return {name: read_tensor(path) for name, path in files.items()}


def read_model_dir(directory: str | Path) -> tuple[BiLMConfig, Vocabulary]:
    """The config and vocabulary of a model (or checkpoint) directory."""
    cfg = load_model_config(directory)
    try:
        vocab = Vocabulary.load(Path(directory, VOCAB_FILE), read_characters(directory))
        return cfg.with_vocab_size(len(vocab)).with_characters(vocab.characters), vocab
    except (ConfigError, DataError) as exc:
        raise ConfigError(f"{directory}: {exc}") from None


def load_model_variables(directory: str | Path, cfg: BiLMConfig, place, with_softmax: bool = True) -> list[str]:
    """Loads the biLM variables of a model directory into the global scope."""
    return load_variables(directory, variable_shapes(cfg, with_softmax), place)


# -- the fluid release's checkpoints ---------------------------------------------------


@dataclass
class FluidImport:
    """What `import_fluid` made of a fluid checkpoint: the model's config, and the files it left out."""

    cfg: BiLMConfig
    left_out: list[str]  # optimizer state and anything else that is not a biLM variable


def read_fluid_config(checkpoint: str | Path, vocab: Vocabulary) -> BiLMConfig:
    """A fluid-release checkpoint's architecture, read from its files' shapes (the release's clips
    3.0/3.0, the state carried across sentences and the full softmax as it trained). The vocabulary
    must have as many entries as `embedding_para` has rows."""
    checkpoint = Path(checkpoint)
    if not Path(checkpoint, EMBEDDING).is_file():
        raise CheckpointError(f"{checkpoint}: no {EMBEDDING} (not a fluid ELMo checkpoint?)")
    rows, embed = read_tensor_header(checkpoint / EMBEDDING)[1]
    if rows != len(vocab):
        raise CheckpointError(f"{checkpoint}: {EMBEDDING} has {rows:,} rows but the vocabulary has "
                              f"{len(vocab):,} entries")
    layers = sum(1 for k in range(64) if Path(checkpoint, f"lstmp_{k}.w_0").is_file()) // 2
    if layers == 0:
        raise CheckpointError(f"{checkpoint}: no lstmp_0.w_0 (not a fluid ELMo checkpoint?)")
    hidden = read_tensor_header(checkpoint / "lstmp_0.w_1")[1][0]
    return BiLMConfig(vocab_size=rows, embed_size=embed, hidden_size=hidden, num_layers=layers, cell_clip=3.0,
                      proj_clip=3.0, state_reset="stream", softmax="full")  # the release's training loss


def import_fluid(checkpoint: str | Path, vocab_path: str | Path, output: str | Path) -> FluidImport:
    """Turns a fluid-release checkpoint (one file per variable under the fluid names, no config, no
    vocabulary: `elmo_chinese_checkpoint`, the `baike` one) into a model directory. The softmax comes
    along when the files have it; Adagrad moments and `learning_rate_0` are left out (listed)."""
    vocab = Vocabulary.load(vocab_path)
    cfg = read_fluid_config(checkpoint, vocab)
    with_softmax = Path(checkpoint, SOFTMAX_WEIGHT).is_file()
    files = check_directory(checkpoint, variable_shapes(cfg, with_softmax))
    arrays = {name: read_tensor(path) for name, path in files.items()}
    write_model_arrays(Path(output), cfg, vocab, arrays)
    left_out = sorted(p.name for p in Path(checkpoint).iterdir() if p.is_file() and p.name not in arrays)
    return FluidImport(cfg, left_out)


# -- bilm-tf ------------------------------------------------------------------------

DIRECTION_INDEX = {"fw": 0, "bw": 1}
# Datasets of the character encoder: reported as unused by a word-level import.
CHAR_CNN_PREFIXES = ("char_embed", "CNN/", "CNN_high_", "CNN_proj/")
TF_FORGET_BIAS = 1.0


def lstm_dataset(direction: str, layer: int, what: str) -> str:
    """`RNN_{d}/RNN/MultiRNNCell/Cell{l}/LSTMCell/{W_0|B|W_P_0}`."""
    return f"RNN_{DIRECTION_INDEX[direction]}/RNN/MultiRNNCell/Cell{layer}/LSTMCell/{what}"


def char_tf_names(cfg: BiLMConfig) -> dict[str, str]:
    """Our character-encoder variable name → bilm-tf dataset name, in creation order."""
    c = cfg.char_cnn
    tf = [CHAR_EMBED]
    for i in range(len(c.filters)):
        tf += [f"CNN/W_cnn_{i}", f"CNN/b_cnn_{i}"]
    for k in range(c.n_highway):
        tf += [f"CNN_high_{k}/{p}_{g}" for g in ("carry", "transform") for p in ("W", "b")]
    if char_projected(cfg):
        tf += ["CNN_proj/W_proj", "CNN_proj/b_proj"]
    return dict(zip(char_variable_shapes(cfg), tf))


def tf_shapes(cfg: BiLMConfig) -> dict[str, tuple[int, ...]]:
    """Every dataset of a bilm-tf `weights.hdf5` this architecture uses (LSTMs; character encoder)."""
    H, P = cfg.hidden_size, cfg.embed_size
    shapes = {}
    if cfg.input == "char":
        ours = char_variable_shapes(cfg)
        shapes.update({tf: ours[name] for name, tf in char_tf_names(cfg).items()})
    for d in DIRECTION_INDEX:
        for layer in range(cfg.num_layers):
            shapes[lstm_dataset(d, layer, "W_0")] = (P + P, 4 * H)
            shapes[lstm_dataset(d, layer, "B")] = (4 * H,)
            shapes[lstm_dataset(d, layer, "W_P_0")] = (H, P)
    return shapes


def _swap_first_blocks(array: np.ndarray) -> np.ndarray:
    """[i | j | f | o] ↔ [j | i | f | o] along the last axis (its own inverse)."""
    i, j, f, o = np.split(array, 4, axis=-1)
    return np.concatenate([j, i, f, o], axis=-1)


# -- options.json ---------------------------------------------------------------


def read_options(path: str | Path, vocab_size: int, char_input: bool = False) -> BiLMConfig:
    """The architecture in a bilm-tf `options.json`, as a `BiLMConfig`.

    `char_input`: the tokens go through the character encoder of `char_cnn`
    (else through a token-embedding table of `vocab_size` rows).
    """
    try:
        options = json.loads(Path(path).read_text())
        lstm = options["lstm"]
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ConfigError(f"{path}: not a bilm-tf options file (no 'lstm' section)") from None
    number = _number_reader(path)

    # `n_tokens_vocab` is the size of bilm-tf's training softmax, which is not
    # published: the vocabulary given here (the token table's rows) is what counts.
    try:
        return BiLMConfig(
            vocab_size=vocab_size,
            input="char" if char_input else "word",
            char_cnn=_read_char_cnn(path, options) if char_input else CharCNNConfig(),
            embed_size=number(lstm, "lstm.projection_dim", int),
            hidden_size=number(lstm, "lstm.dim", int),
            num_layers=number(lstm, "lstm.n_layers", int),
            cell_clip=number(lstm, "lstm.cell_clip", float, 0.0) or 0.0,
            proj_clip=number(lstm, "lstm.proj_clip", float, 0.0) or 0.0,
            use_skip_connections=bool(lstm.get("use_skip_connections", False)),
            forget_bias=TF_FORGET_BIAS,
            dropout=0.0,
            softmax="full",
        )
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _number_reader(path):
    def number(section: dict, key: str, kind, default=None):
        value = section.get(key.rsplit(".", 1)[-1], default)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: {key} must be a number, got {value!r}")
        if kind is int and value != int(value):
            raise ConfigError(f"{path}: {key} must be an integer, got {value!r}")
        return kind(value)

    return number


def _read_char_cnn(path, options: dict) -> CharCNNConfig:
    cnn = options.get("char_cnn")
    if not isinstance(cnn, dict):
        raise ConfigError(f"{path}: no 'char_cnn' section, so this is not a character model "
                          "(import it word-level with --token-embeddings)")
    number = _number_reader(path)
    n_chars = number(cnn, "char_cnn.n_characters", int, NUM_CHARS + 1)
    if n_chars not in (NUM_CHARS, NUM_CHARS + 1):  # 261 when trained, 262 (with padding) published
        raise ConfigError(f"{path}: char_cnn.n_characters is {n_chars}, expected 261 or 262")
    filters = cnn.get("filters")
    if not isinstance(filters, list) or not all(
            isinstance(f, list) and len(f) == 2 and all(isinstance(v, int) for v in f) for f in filters):
        raise ConfigError(f"{path}: char_cnn.filters must be a list of [width, count], got {filters!r}")
    activation = cnn.get("activation", "relu")
    if activation not in ("relu", "tanh"):
        raise ConfigError(f"{path}: char_cnn.activation must be relu or tanh, got {activation!r}")
    try:
        return CharCNNConfig(
            embed_size=number(cnn.get("embedding") or {}, "char_cnn.embedding.dim", int),
            filters=filters,
            n_highway=number(cnn, "char_cnn.n_highway", int, 0),
            activation=activation,
            max_characters=number(cnn, "char_cnn.max_characters_per_token", int),
        )
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def write_options(path: str | Path, cfg: BiLMConfig) -> None:
    """Writes the architecture as a bilm-tf `options.json` (with `char_cnn` for a character model)."""
    options = {
        "lstm": {"dim": cfg.hidden_size, "projection_dim": cfg.embed_size, "n_layers": cfg.num_layers,
                 "cell_clip": cfg.cell_clip, "proj_clip": cfg.proj_clip,
                 "use_skip_connections": cfg.use_skip_connections},
    }
    if cfg.input == "word":
        options["n_tokens_vocab"] = cfg.vocab_size
    else:
        c = cfg.char_cnn
        options["char_cnn"] = {"activation": c.activation, "embedding": {"dim": c.embed_size},
                               "filters": c.filters, "max_characters_per_token": c.max_characters,
                               "n_characters": NUM_CHARS + 1, "n_highway": c.n_highway}
    Path(path).write_text(json.dumps(options, indent=2) + "\n")


# -- weights.hdf5 ---------------------------------------------------------------


def read_weights(path: str | Path, cfg: BiLMConfig) -> tuple[dict[str, np.ndarray], list[str]]:
    """(datasets `cfg` uses, checked; names of character-encoder datasets a word model leaves unused)."""
    expected = tf_shapes(cfg)
    arrays, char_cnn = {}, []
    with _datasets(path) as datasets:
        for name, dataset in datasets.items():
            if name in expected:
                if dataset.shape != expected[name]:
                    raise CheckpointError(
                        f"{path}: {name} has shape {list(dataset.shape)} but options.json ({_dims(cfg, name)}) "
                        f"implies {list(expected[name])}"
                    )
                try:
                    arrays[name] = np.asarray(dataset[()], np.float32)
                except (OSError, RuntimeError, ValueError) as exc:
                    raise CheckpointError(f"{path}: {name} cannot be read ({str(exc).splitlines()[0]})") from None
            elif name.startswith(CHAR_CNN_PREFIXES) and cfg.input == "word":
                char_cnn.append(name)
            else:
                raise CheckpointError(f"{path}: unknown dataset '{name}' (not a variable of the "
                                      f"{cfg.num_layers}-layer {cfg.input}-input bilm-tf model options.json describes)")
    missing = [n for n in expected if n not in arrays]
    if missing:
        raise CheckpointError(f"{path}: missing dataset(s) {', '.join(missing)}")
    return arrays, char_cnn


def _dims(cfg: BiLMConfig, name: str) -> str:
    if name.startswith("RNN_"):
        return f"dim {cfg.hidden_size}, projection_dim {cfg.embed_size}"
    c = cfg.char_cnn
    return f"char_cnn embedding dim {c.embed_size}, filters {c.filters}, projection_dim {cfg.embed_size}"


def write_weights(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Writes bilm-tf datasets (TF names → arrays) to a `weights.hdf5`."""
    with h5py.File(path, "w") as f:
        for name, value in arrays.items():
            f.create_dataset(name, data=value)


def read_token_embeddings(path: str | Path, cfg: BiLMConfig) -> np.ndarray:
    """The `embedding` dataset, one row per vocabulary line."""
    with _datasets(path) as datasets:
        if "embedding" not in datasets:
            raise CheckpointError(f"{path}: no dataset 'embedding' (found: {', '.join(datasets) or 'none'})")
        shape = tuple(datasets["embedding"].shape)
        if shape != (cfg.vocab_size, cfg.embed_size):
            raise CheckpointError(
                f"{path}: 'embedding' has shape {list(shape)} but the vocabulary has {cfg.vocab_size} "
                f"entries and projection_dim is {cfg.embed_size}"
            )
        return np.asarray(datasets["embedding"][()], np.float32)


def write_token_embeddings(path: str | Path, embedding: np.ndarray) -> None:
    """Writes a token table as bilm-tf's embedding HDF5 (dataset `embedding`, one row per vocabulary line)."""
    with h5py.File(path, "w") as f:
        f.create_dataset("embedding", data=embedding)


@contextmanager
def _datasets(path: str | Path) -> Iterator[dict]:
    """Every dataset of an HDF5 file by its full path, while the file is open."""
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except OSError:
        raise CheckpointError(f"{path}: not an HDF5 file") from None
    with f:
        found = {}
        try:
            f.visititems(lambda name, obj: found.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
        except (OSError, RuntimeError, KeyError, ValueError) as exc:  # what HDF5 says of a damaged file
            raise CheckpointError(f"{path}: a damaged HDF5 file ({str(exc).splitlines()[0]})") from None
        yield found


# -- mapping ------------------------------------------------------------------------


def to_ours(tf: dict[str, np.ndarray], embedding: np.ndarray | None, cfg: BiLMConfig) -> dict[str, np.ndarray]:
    """Our variables (fluid names) from bilm-tf datasets (and the token embedding of a word model)."""
    P = cfg.embed_size
    if cfg.input == "char":
        ours = {name: tf[tf_name] for name, tf_name in char_tf_names(cfg).items()}
    else:
        ours = {EMBEDDING: embedding}
    for d in DIRECTION_INDEX:
        for layer in range(cfg.num_layers):
            names = layer_names(cfg, d, layer)
            w0 = _swap_first_blocks(tf[lstm_dataset(d, layer, "W_0")])
            ours[names["gate_w"]] = w0[:P]
            ours[names["weight"]] = w0[P:]
            ours[names["bias"]] = _swap_first_blocks(tf[lstm_dataset(d, layer, "B")])[None, :]
            ours[names["proj"]] = tf[lstm_dataset(d, layer, "W_P_0")]
    return ours


def to_tf(ours: dict[str, np.ndarray], cfg: BiLMConfig) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """(bilm-tf datasets, token embedding — None for a character model) from our variables.

    TF's cell adds 1.0 to the forget gate; a model trained here has
    `forget_bias` 0, so 1.0 is taken out of its stored forget-gate bias.
    """
    H = cfg.hidden_size
    shift = np.float64(cfg.forget_bias) - TF_FORGET_BIAS
    tf = {}
    if cfg.input == "char":
        tf.update({tf_name: ours[name] for name, tf_name in char_tf_names(cfg).items()})
    for d in DIRECTION_INDEX:
        for layer in range(cfg.num_layers):
            names = layer_names(cfg, d, layer)
            w0 = np.concatenate([ours[names["gate_w"]], ours[names["weight"]]], axis=0)
            tf[lstm_dataset(d, layer, "W_0")] = _swap_first_blocks(w0)
            bias = ours[names["bias"]].reshape(-1)
            if shift:
                bias = bias.astype(np.float64)
                bias[2 * H:3 * H] += shift
                bias = bias.astype(np.float32)
            tf[lstm_dataset(d, layer, "B")] = _swap_first_blocks(bias)
            tf[lstm_dataset(d, layer, "W_P_0")] = ours[names["proj"]]
    return tf, ours.get(EMBEDDING)


# -- conversions ----------------------------------------------------------------------


def import_bilm_tf(options: str | Path, weights: str | Path, output: str | Path,
                   token_embeddings: str | Path | None = None,
                   vocab: str | Path | None = None) -> tuple[BiLMConfig, list[str]]:
    """Writes a bilm-tf model as a model directory; returns its config and the datasets left unused.

    Without `token_embeddings` the character encoder in `weights` is imported
    (the published AllenNLP models: any word gets a vector) and `vocab` is
    optional; with it the import is word-level (the table replaces the
    character encoder, whose datasets are returned as unused).
    """
    char_input = token_embeddings is None
    vocabulary = Vocabulary.load(vocab) if vocab else Vocabulary(list(SPECIAL_TOKENS))
    cfg = read_options(options, len(vocabulary), char_input=char_input)
    tf_arrays, unused = read_weights(weights, cfg)
    embedding = None if char_input else read_token_embeddings(token_embeddings, cfg)
    write_model_arrays(Path(output), cfg, vocabulary, to_ours(tf_arrays, embedding, cfg))
    return cfg, unused


def export_bilm_tf(model_dir: str | Path, output: str | Path) -> list[str]:
    """Writes a model directory in the bilm-tf format (atomically); returns the file names.

    A word model also gets `token_embeddings.hdf5` (what bilm-tf's
    `BidirectionalLanguageModel(..., use_character_inputs=False,
    embedding_weight_file=...)` loads); a character model's encoder goes into
    `weights.hdf5` with its `char_cnn` options, as the published models.
    """
    cfg, vocab = read_model_dir(model_dir)
    if cfg.input == "word+char" or cfg.char_cnn.spelling == "characters" and cfg.spells:
        raise ConfigError(f"{model_dir} reads {'words and ' if cfg.input == 'word+char' else ''}characters of its own "
                          "character vocabulary (an ELMoForManyLangs model): bilm-tf has no such token encoder")
    tf_arrays, embedding = to_tf(read_model_arrays(model_dir, cfg), cfg)
    written = [OPTIONS, WEIGHTS, VOCAB_FILE]
    with atomic_directory(output) as tmp:
        write_options(tmp / OPTIONS, cfg)
        write_weights(tmp / WEIGHTS, tf_arrays)
        if embedding is not None:
            write_token_embeddings(tmp / TOKEN_EMBEDDINGS, embedding)
            written.insert(2, TOKEN_EMBEDDINGS)
        vocab.save(tmp / VOCAB_FILE)
    return written
