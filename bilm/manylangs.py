"""ELMoForManyLangs (HIT-SCIR's pretrained ELMo for the CoNLL 2018 languages) → our model directories.

**Its model directory** (`zh.model`, …) holds `config.json`, whose
`config_path` names the architecture file (in the directory, or one of the
two the package ships, found by name: `SHIPPED_CONFIGS`), `word.dic` and
`char.dic` (`token<TAB>id` lines; a line whose token `str.strip` removes —
a whitespace character — is the token `\\u3000`, as the package reads it),
and two torch `state_dict`s (zip or legacy format, read without torch):
`token_embedder.pkl` and `encoder.pkl`.

**Its token encoder** concatenates a word vector (`word_dim`) and a
character CNN's features (`char_dim`-wide characters, bilm-tf's filter bank,
max over positions then the activation, highway layers), and projects them
with a bias to the LSTM's input size. Either part may be absent. Ours:
`input: word+char` for both; `input: char` with `characters` spelling for
characters only; a word-only model's projection is folded into its word
table (`input: word`). Its highway layers gate the other way round from
bilm-tf's (`h = g·x + (1−g)·relu(A·x)`), so the gate's weights are negated
into ours; its characters' `<bow>`/`<eow>` ids are swapped where it spells a
word, so ours take each other's row.

**Its contextual part** is AllenNLP's `LstmCellWithProjection` (gates
[i | f | g | o], no forget-gate constant, the bias on the recurrent product,
clips as configured), residual from the second layer: ours with the gate
blocks reordered, as the bilm-tf import does. Its output layers are ours:
`[e ; e]` then each layer `[forward ; backward]`, the `<bos>`/`<eos>`
positions stripped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bilm.config import BiLMConfig, CharCNNConfig
from bilm.formats import write_model_arrays
from bilm.model import CHAR_EMBED, EMBEDDING, layer_names
from engine.config import read_json
from engine.errors import CheckpointError, ConfigError
from engine.weights_io import read_torch_bin
from reader.chars import CHARACTER_SPECIALS
from reader.text_file import numbered_lines
from reader.vocab import BOS, EOS, UNK, Vocabulary

CONFIG, WORDS, CHARS = "config.json", "word.dic", "char.dic"
TOKEN_EMBEDDER, ENCODER = "token_embedder.pkl", "encoder.pkl"

_BILM_TF_FILTERS = [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]]
_SHIPPED = {"encoder": {"name": "elmo", "projection_dim": 512, "cell_clip": 3, "proj_clip": 3, "dim": 4096,
                        "n_layers": 2},
            "token_embedder": {"name": "cnn", "activation": "relu", "filters": _BILM_TF_FILTERS, "n_highway": 2,
                               "word_dim": 100, "char_dim": 50, "max_characters_per_token": 50},
            "dropout": 0.1}
# The architecture files the package ships (both alike), which released models name instead of including.
SHIPPED_CONFIGS = {"cnn_0_100_512_4096_sample.json": _SHIPPED, "cnn_50_100_512_4096_sample.json": _SHIPPED}

# Our names of its word specials.
_WORD_SPECIALS = {"<bos>": BOS, "<eos>": EOS, "<oov>": UNK}
# Ours ← its: where it spells a word it writes its '<eow>' entry first and its '<bow>' entry last.
_CHAR_SPECIALS = {"<pad>": "<pad>", "<bow>": "<eow>", "<eow>": "<bow>", "<oov>": "<oov>", "<bos>": "<bos>",
                  "<eos>": "<eos>"}
_GATES = [2, 0, 1, 3]  # its blocks [i | f | g | o] in our order [g | i | f | o]


@dataclass
class ManyLangsImport:
    """What `import_manylangs` made: the model's config, and what the dictionaries held that ours could not."""

    cfg: BiLMConfig
    config_source: str  # the architecture file read (a path, or the shipped file's name)
    formats: dict[str, str]  # torch file → "zip" or "legacy"
    renamed_words: list[str] = field(default_factory=list)  # tokens a vocabulary line cannot hold, renamed
    notes: list[str] = field(default_factory=list)


def import_manylangs(model_dir: str | Path, output: str | Path) -> ManyLangsImport:
    """Turns an ELMoForManyLangs model directory into a model directory every command here takes
    (embedding, export, the tagger, continued pretraining). The model has no softmax: the package does
    not publish it."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ConfigError(f"{model_dir}: no such directory")
    config, source = read_config(model_dir)
    sizes = config["token_embedder"]
    embedder = _read_state(model_dir / TOKEN_EMBEDDER)
    encoder = _read_state(model_dir / ENCODER)
    notes: list[str] = []
    words = chars = None
    if sizes["word_dim"] > 0:
        words = _entries(read_dictionary(model_dir / WORDS), _rows(embedder, "word_emb_layer.embedding.weight"),
                         model_dir / WORDS, notes)
    if sizes["char_dim"] > 0:
        chars = _entries(read_dictionary(model_dir / CHARS), _rows(embedder, "char_emb_layer.embedding.weight"),
                         model_dir / CHARS, notes)
    vocab, renamed = _vocabulary(words, chars, model_dir)
    cfg = bilm_config(config, len(vocab), len(vocab.characters), source)
    arrays = token_encoder_arrays(embedder, cfg, chars, model_dir / TOKEN_EMBEDDER)
    arrays.update(lstm_arrays(encoder, cfg, model_dir / ENCODER))
    write_model_arrays(Path(output), cfg, vocab, arrays)
    formats = {name: _format(model_dir / name) for name in (TOKEN_EMBEDDER, ENCODER)}
    return ManyLangsImport(cfg, source, formats, renamed, notes)


# -- the directory's files ------------------------------------------------------------------


def read_config(model_dir: Path) -> tuple[dict, str]:
    """The architecture `config.json` names, where the package finds it: the path as given (relative to
    the directory), the file of that name in the directory, or the package's own of that name."""
    pointer = model_dir / CONFIG
    named = read_json(pointer, f"{model_dir}: no {CONFIG} (not an ELMoForManyLangs model directory?)")
    if not isinstance(named, dict) or not isinstance(named.get("config_path"), str) or not named["config_path"]:
        raise ConfigError(f"{pointer}: expected a JSON object with 'config_path'")
    named = named["config_path"]
    for path in (model_dir / named, model_dir / Path(named).name):
        if path.is_file():
            return _checked_config(read_json(path), path), str(path)
    if Path(named).name in SHIPPED_CONFIGS:
        return SHIPPED_CONFIGS[Path(named).name], f"the package's {Path(named).name}"
    raise ConfigError(f"{pointer}: config_path {named!r} is neither in {model_dir} nor one of the package's "
                      f"configs ({', '.join(SHIPPED_CONFIGS)})")


def _checked_config(config, path: Path) -> dict:
    """The config, if it describes a model this importer can read (else one error naming the key)."""
    def need(section: str, key: str, ok, what: str, default=...):
        value = config.get(section, {}).get(key, default) if isinstance(config.get(section), dict) else ...
        if value is ... or not ok(value):
            got = "nothing" if value is ... else repr(value)
            raise ConfigError(f"{path}: {section}.{key} must be {what}, got {got}")
        return value

    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a JSON object (an ELMoForManyLangs config)")
    count = lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0  # noqa: E731
    size = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0  # noqa: E731
    clip = lambda v: v is None or isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0  # noqa: E731
    if str(need("encoder", "name", lambda v: isinstance(v, str), "a name", "elmo")).lower() != "elmo":
        raise ConfigError(f"{path}: encoder {config['encoder']['name']!r}: only the 'elmo' encoder (the biLM with "
                          "projections) is an ELMo")
    if str(need("token_embedder", "name", lambda v: isinstance(v, str), "a name", "cnn")).lower() != "cnn":
        raise ConfigError(f"{path}: token_embedder {config['token_embedder']['name']!r}: only 'cnn' can be imported "
                          "(the package's character-LSTM encoder fails in its own code, so no model uses it)")
    for key in ("projection_dim", "dim", "n_layers"):
        need("encoder", key, count, "a positive integer")
    for key in ("cell_clip", "proj_clip"):
        need("encoder", key, clip, "a clip value (or null)", None)
    word_dim = need("token_embedder", "word_dim", size, "an integer >= 0")
    char_dim = need("token_embedder", "char_dim", size, "an integer >= 0")
    if word_dim == 0 and char_dim == 0:
        raise ConfigError(f"{path}: word_dim and char_dim are both 0: the model has no token encoder")
    if char_dim > 0:
        need("token_embedder", "filters", lambda v: isinstance(v, list) and v and all(
            isinstance(f, list) and len(f) == 2 and all(count(x) for x in f) for f in v),
            "a list of [width, count] pairs")
        need("token_embedder", "n_highway", size, "an integer >= 0", 0)
        need("token_embedder", "activation", lambda v: v in ("relu", "tanh"), "relu or tanh", "relu")
        need("token_embedder", "max_characters_per_token", count, "a positive integer", 50)
    dropout = config.get("dropout", 0.1)
    if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout < 1:
        raise ConfigError(f"{path}: dropout must be in [0, 1), got {dropout!r}")
    return config


def read_dictionary(path: Path) -> dict[str, int]:
    """A `word.dic` / `char.dic` exactly as the package reads it (a later line wins a repeated token)."""
    entries: dict[str, int] = {}
    for lineno, line in numbered_lines(path, "dictionary"):
        fields = line.strip().split("\t")
        if len(fields) == 1:  # the token was whitespace, which strip() took away
            fields.insert(0, "\u3000")
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            raise ConfigError(f"{path}:{lineno}: expected 'token<TAB>id', got {line.rstrip(chr(10))!r}")
        entries[fields[0]] = int(fields[1])
    if not entries:
        raise ConfigError(f"{path}: empty dictionary")
    return entries


def _entries(entries: dict[str, int], rows: int, path: Path, notes: list[str]) -> list[str | None]:
    """Each table row's entry (None: no entry reads that row). An entry whose id is past the table is
    left out with a note: the package fails on it only when it is used."""
    by_row: list[str | None] = [None] * rows
    dropped = []
    for token, i in entries.items():
        if 0 <= i < rows:
            by_row[i] = token
        else:
            dropped.append(f"{token!r} ({i})")
    if dropped:
        notes.append(f"{path}: {len(dropped)} entries past the table's {rows:,} rows left out: "
                     f"{', '.join(dropped[:5])}{', …' if len(dropped) > 5 else ''}")
    return by_row


def _vocabulary(words: list | None, chars: list | None, model_dir: Path) -> tuple[Vocabulary, list[str]]:
    """Our vocabulary (its specials under our names) and character list (our specials first)."""
    renamed: list[str] = []
    if words is None:  # a characters-only model still names <S>, </S>, <UNK> for the programs' boundaries
        tokens = [BOS, EOS, UNK]
    else:
        _require(words, ("<bos>", "<eos>", "<oov>", "<pad>"), model_dir / WORDS)
        tokens = []
        for i, token in enumerate(words):
            ours = _WORD_SPECIALS.get(token, token)
            if token is None or token in _WORD_SPECIALS.values() or not Vocabulary.storable(token):
                ours = f"<unused-{i}>" if token is None else f"<word-{i}>"
                if token is not None:
                    renamed.append(f"{token!r} → {ours}")
            tokens.append(ours)
    characters: tuple[str, ...] = ()
    if chars is not None:
        _require(chars, tuple(_CHAR_SPECIALS.values()), model_dir / CHARS)
        rest = [c if c is not None else f"<unused-{i}>" for i, c in enumerate(chars) if c not in _CHAR_SPECIALS]
        characters = CHARACTER_SPECIALS + tuple(rest)
    return Vocabulary(tokens, source=str(model_dir / WORDS), characters=characters), renamed


def _require(entries: list, specials: tuple, path: Path) -> None:
    missing = [s for s in specials if s not in entries]
    if missing:
        raise ConfigError(f"{path}: missing the package's special entr{'ies' if len(missing) > 1 else 'y'} "
                          f"{', '.join(missing)}")


# -- the architecture and the weights ----------------------------------------------------------


def bilm_config(config: dict, vocab_size: int, num_characters: int, source: str = "config") -> BiLMConfig:
    """Our `BiLMConfig` for one of its configs, as `read_config` checked it (dropout as it trained, for
    continued pretraining); `source` names it in an error."""
    try:
        return _bilm_config(config, vocab_size, num_characters)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _bilm_config(config: dict, vocab_size: int, num_characters: int) -> BiLMConfig:
    encoder, tokens = config["encoder"], config["token_embedder"]
    word_dim, char_dim = tokens["word_dim"], tokens["char_dim"]
    char_cnn = CharCNNConfig()
    if char_dim > 0:
        char_cnn = CharCNNConfig(embed_size=char_dim, filters=[list(f) for f in tokens["filters"]],
                                 n_highway=tokens.get("n_highway", 0), activation=tokens.get("activation", "relu"),
                                 max_characters=tokens.get("max_characters_per_token", 50),
                                 spelling="characters", num_characters=num_characters)
    kind = "word+char" if word_dim > 0 and char_dim > 0 else "char" if char_dim > 0 else "word"
    if kind == "char" and char_cnn.num_features == encoder["projection_dim"]:
        raise ValueError("a characters-only model whose filters are exactly projection_dim wide is not "
                         "supported (its projection would be dropped)")
    return BiLMConfig(vocab_size=vocab_size, input=kind, char_cnn=char_cnn, word_dim=word_dim if kind == "word+char"
                      else 0, embed_size=encoder["projection_dim"], hidden_size=encoder["dim"],
                      num_layers=encoder["n_layers"], cell_clip=float(encoder.get("cell_clip") or 0.0),
                      proj_clip=float(encoder.get("proj_clip") or 0.0), use_skip_connections=True,
                      forget_bias=0.0, dropout=float(config.get("dropout", 0.1)), state_reset="sentence",
                      softmax="full")


def token_encoder_arrays(state: dict, cfg: BiLMConfig, chars: list | None, path: Path) -> dict[str, np.ndarray]:
    """Our token-encoder variables from its `token_embedder.pkl`."""
    take = _Taker(state, path)
    arrays: dict[str, np.ndarray] = {}
    projection = take("projection.weight", (cfg.embed_size, None)).T
    bias = take("projection.bias", (cfg.embed_size,))
    if cfg.input != "char":
        words = take("word_emb_layer.embedding.weight", (cfg.vocab_size, None))
        if cfg.input == "word":  # the projection folded into the table: the same vectors, one lookup
            if words.shape[1] != projection.shape[0]:
                raise CheckpointError(f"{path}: projection.weight takes {projection.shape[0]} inputs but the word "
                                      f"vectors are {words.shape[1]} wide")
            arrays[EMBEDDING] = (words.astype(np.float64) @ projection + bias).astype(np.float32)
            take.done()
            return arrays
        arrays[EMBEDDING] = words
    c = cfg.char_cnn
    table = take("char_emb_layer.embedding.weight", (c.num_characters, c.embed_size))
    arrays[CHAR_EMBED] = table[_character_rows(chars)]
    for i, (width, count) in enumerate(c.filters):
        kernel = take(f"convolutions.{i}.weight", (count, c.embed_size, width))  # [out, in, width]
        arrays[f"CNN_W_cnn_{i}"] = kernel.transpose(2, 1, 0)[None]  # [1, width, in, out]
        arrays[f"CNN_b_cnn_{i}"] = take(f"convolutions.{i}.bias", (count,))
    n = c.num_features
    for k in range(c.n_highway):
        weight = take(f"highways._layers.{k}.weight", (2 * n, n))
        b = take(f"highways._layers.{k}.bias", (2 * n,))
        arrays[f"CNN_high_{k}_W_transform"], arrays[f"CNN_high_{k}_b_transform"] = weight[:n].T, b[:n]
        # Its gate g keeps the input; ours weighs the transform: 1 − σ(z) = σ(−z).
        arrays[f"CNN_high_{k}_W_carry"], arrays[f"CNN_high_{k}_b_carry"] = -weight[n:].T, -b[n:]
    arrays["CNN_proj_W_proj"], arrays["CNN_proj_b_proj"] = projection, bias
    take.done()
    return arrays


def _character_rows(chars: list) -> list[int]:
    """Its table's row for each entry of our character list (`_vocabulary`'s order)."""
    rows = {c: i for i, c in enumerate(chars) if c is not None}
    specials = [rows[_CHAR_SPECIALS[s]] for s in CHARACTER_SPECIALS]
    return specials + [i for i, c in enumerate(chars) if c not in _CHAR_SPECIALS]


def lstm_arrays(state: dict, cfg: BiLMConfig, path: Path) -> dict[str, np.ndarray]:
    """Our LSTMP variables from its `encoder.pkl` (AllenNLP's `LstmCellWithProjection`s)."""
    take = _Taker(state, path)
    H, P = cfg.hidden_size, cfg.embed_size
    arrays = {}
    for direction, theirs in (("fw", "forward"), ("bw", "backward")):
        for layer in range(cfg.num_layers):
            names, key = layer_names(cfg, direction, layer), f"{theirs}_layer_{layer}"
            arrays[names["gate_w"]] = _reorder(take(f"{key}.input_linearity.weight", (4 * H, P))).T
            arrays[names["weight"]] = _reorder(take(f"{key}.state_linearity.weight", (4 * H, P))).T
            arrays[names["bias"]] = _reorder(take(f"{key}.state_linearity.bias", (4 * H,)))[None]
            arrays[names["proj"]] = take(f"{key}.state_projection.weight", (P, H)).T
    take.done()
    return arrays


def _reorder(gates: np.ndarray) -> np.ndarray:
    blocks = np.split(gates, 4, axis=0)
    return np.concatenate([blocks[i] for i in _GATES], axis=0)


class _Taker:
    """Takes a state dict's tensors by name, checking shapes (None: any size) and, once done, that
    nothing was left over."""

    def __init__(self, state: dict, path: Path):
        self.state, self.path, self.taken = state, path, set()

    def __call__(self, name: str, shape: tuple) -> np.ndarray:
        if name not in self.state:
            raise CheckpointError(f"{self.path}: no tensor '{name}' (this config expects it)")
        value = np.asarray(self.state[name], np.float32)
        if len(value.shape) != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
            want = [s if s is not None else "any" for s in shape]
            raise CheckpointError(f"{self.path}: tensor '{name}' has shape {list(value.shape)}, the config "
                                  f"needs {want}")
        self.taken.add(name)
        return value

    def done(self) -> None:
        extra = sorted(set(self.state) - self.taken)
        if extra:
            raise CheckpointError(f"{self.path}: tensors this config does not describe: {', '.join(extra[:5])}"
                                  f"{', …' if len(extra) > 5 else ''}")


def _read_state(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    return read_torch_bin(path)


def _rows(state: dict, name: str) -> int:
    if name not in state:
        raise CheckpointError(f"no tensor '{name}' in the token embedder, which the config's sizes need")
    return int(state[name].shape[0])


def _format(path: Path) -> str:
    with open(path, "rb") as f:
        return "zip" if f.read(2) == b"PK" else "legacy"
