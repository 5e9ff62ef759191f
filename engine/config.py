"""Config files: YAML recipes → typed dataclasses, with `-o section.key=value` overrides.

Defaults live in the dataclasses, once. A recipe in `configs/` holds only
what it changes: its sections mirror the dataclass tree, `job:` names the job
class that runs it (`bilm.pretrain.ElmoPretraining`), and `base:` names a
recipe it extends (a path relative to the file), so `elmo_char.yaml` is
`elmo.yaml` plus the keys that make a character model. `load_config` reads a
recipe, applies overrides, and checks every key and value against the
dataclass fields, so a typo fails at start-up with the key's dotted path
instead of being ignored. Supported field types: bool, int, float, str,
Optional[...], list[...], Literal[...] and nested dataclasses.

`describe` lists every key with its default, a recipe's value and its
meaning, read from the comment beside (or above) the field in the dataclass:
the README's key table and `--show` both come from it.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import io
import json
import textwrap
import tokenize
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from engine.errors import ConfigError, DataError

T = TypeVar("T")


def load_config(cls: type[T], path: str | Path | None, overrides: list[str] = ()) -> T:
    """Builds `cls` from a recipe (or the defaults when `path` is None) plus overrides."""
    data = read_recipe(path) if path is not None else {}
    data.pop(JOB_KEY, None)
    for item in overrides:
        apply_override(cls, data, item)
    return from_dict(cls, data, source=str(path) if path is not None else "defaults")


JOB_KEY, BASE_KEY = "job", "base"


def section(cls: type, **values: Any) -> Any:
    """A dataclass field holding a config section whose default is `cls(**values)` (a job's recipe)."""
    return dataclasses.field(default_factory=lambda: cls(**values))


def read_recipe(path: str | Path) -> dict[str, Any]:
    """A recipe's raw mapping, with the recipes it extends (`base:`) merged under it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML ({what})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: '{BASE_KEY}' must be the path of another recipe, got {base!r}")
    return _merged(read_recipe(path.parent / base), data)


def _merged(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def apply_override(cls: type, data: dict, item: str) -> None:
    """Sets `a.b.c=value` in the raw dict `data`; the key must exist in `cls`."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override '{item}' must look like section.key=value")
    field_type = _field_type_at(cls, key.split("."), key)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if _is_str_type(field_type) and not isinstance(value, str) and value is not None:
        value = raw  # `-o data.vocab=123` means the string "123"
    if not dataclasses.is_dataclass(field_type):  # a wrong value is the override's mistake, not the recipe's
        shown = item if item.isprintable() else f"{key}={raw!r}"  # a value with a newline stays on one line
        value = _convert(field_type, value, f"-o {shown}", key)
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override '{item}': '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def from_dict(cls: type[T], data: Any, source: str = "config", prefix: str = "", base: Any = None) -> T:
    """Converts a raw mapping into the dataclass `cls`, checking keys and types.

    Keys the mapping leaves out keep their value in `base` (by default the
    class's own defaults), so a section that sets one key keeps the rest of
    the job's defaults rather than falling back to the section class's.
    """
    where = prefix.rstrip(".") or "the top level"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: '{where}' must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in data:
        if key not in names:
            raise ConfigError(f"{source}: unknown key '{prefix}{key}'{_suggest(key, names)}")
    if base is None:
        base = _defaults(cls)
    kwargs = {}
    for name in names:
        default = getattr(base, name, dataclasses.MISSING) if base is not None else dataclasses.MISSING
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], source, f"{prefix}{name}", default)
        elif default is not dataclasses.MISSING:
            kwargs[name] = default
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: '{where}': {exc}") from None
    return obj


def check_files(cfg: Any, section_name: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> None:
    """Every file a section names exists, or one error naming the key: `required` keys must name a file,
    `optional` ones may be "" (skipped)."""
    for key in (*required, *optional):
        path = getattr(cfg, key)
        if not path and key in optional:
            continue
        if not path:
            raise ConfigError(f"{section_name}.{key}: no file given (-o {section_name}.{key}=PATH)")
        if not Path(path).is_file():
            skip = f"; -o {section_name}.{key}= skips it" if key in optional else ""
            raise DataError(f"{section_name}.{key}: no such file {path}{skip}")


def read_json(path: str | Path, missing: str | None = None) -> Any:
    """A JSON file's content; `missing` is the message when the file does not exist."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(missing or f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def write_json(path: str | Path, obj: Any) -> None:
    """Writes a dataclass (or plain data) as indented JSON."""
    data = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj
    Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def to_dict(obj: Any) -> Any:
    """The plain-data form of a config (what `load_config` reads back)."""
    return dataclasses.asdict(obj)


def dump_yaml(obj: Any) -> str:
    return yaml.safe_dump(to_dict(obj), sort_keys=False)


def _defaults(cls: type) -> Any:
    try:
        return cls()
    except TypeError:  # a dataclass with required fields has no default instance
        return None


def _convert(tp: Any, value: Any, source: str, key: str, default: Any = None) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        base = default if isinstance(default, tp) else None
        return from_dict(tp, value, source, prefix=f"{key}.", base=base)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, source, key)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{source}: '{key}' must be one of {list(allowed)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: '{key}' must be a list, got {value!r}")
        (item_type,) = typing.get_args(tp)
        return [_convert(item_type, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        # YAML 1.1 reads `1e-3` (no dot) as a string; every user writes it so.
        try:
            return float(value)
        except ValueError:
            pass
    if tp is Any or (isinstance(tp, type) and isinstance(value, tp)):
        if tp is int and isinstance(value, bool):
            raise ConfigError(f"{source}: '{key}' must be an int, got {value!r}")
        return value
    raise ConfigError(f"{source}: '{key}' must be {_type_name(tp)}, got {value!r}")


def _field_type_at(cls: type, parts: list[str], key: str) -> Any:
    tp: Any = cls
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(tp):
            raise ConfigError(f"override: unknown key '{key}' ('{'.'.join(parts[:i])}' is not a section)")
        hints = typing.get_type_hints(tp)
        names = [f.name for f in dataclasses.fields(tp) if f.init]
        if part not in names:
            raise ConfigError(f"override: unknown key '{key}'{_suggest(part, names)}")
        tp = hints[part]
    return tp


def _is_str_type(tp: Any) -> bool:
    if tp is str:
        return True
    return typing.get_origin(tp) in (Union, types.UnionType) and str in typing.get_args(tp)


def _type_name(tp: Any) -> str:
    names = {bool: "true or false", int: "an int", float: "a number", str: "a string"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _suggest(key: str, names: list[str]) -> str:
    close = difflib.get_close_matches(key, names, n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(names)})"


# -- the key table ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class KeyRow:
    """One config key: its dotted path, default, a recipe's value and its meaning."""

    key: str
    default: Any
    value: Any
    meaning: str


def describe(cfg: Any, defaults: Any = None, prefix: str = "") -> list[KeyRow]:
    """Every key of the config `cfg` (a dataclass instance), against `defaults` (its class's, by default)."""
    defaults = defaults if defaults is not None else _defaults(type(cfg))
    meanings = field_meanings(type(cfg))
    rows = []
    for f in dataclasses.fields(cfg):
        value, default = getattr(cfg, f.name), getattr(defaults, f.name, None)
        if dataclasses.is_dataclass(value):
            rows += describe(value, default, f"{prefix}{f.name}.")
        else:
            rows.append(KeyRow(prefix + f.name, default, value, meanings.get(f.name, "")))
    return rows


def field_meanings(cls: type) -> dict[str, str]:
    """Field name → its comment in the class source: the lines right above it, then the one beside it.
    A field a subclass declares again without a comment keeps its base class's."""
    meanings: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            meanings.update({name: text for name, text in _own_field_meanings(klass).items()
                             if text or name not in meanings})
    return meanings


def _own_field_meanings(cls: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments = {tok.start[0]: tok.string.lstrip("#").strip()
                for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT}
    lines = source.splitlines()
    meanings = {}
    for node in ast.parse(source).body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            above, line = [], node.lineno - 1
            while line in comments and lines[line - 1].lstrip().startswith("#"):
                above.insert(0, comments[line])
                line -= 1
            beside = comments.get(node.end_lineno, "")
            meanings[node.target.id] = " ".join(part for part in (*above, beside) if part)
    return meanings


def format_value(value: Any) -> str:
    """A value as a recipe would write it."""
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return json.dumps(value)


def key_table(rows: list[KeyRow], recipe: str | None = None) -> str:
    """A markdown table of `describe`'s rows; with `recipe`, a column of the values it changes."""
    head = ["key", "default"] + ([f"`{recipe}`"] if recipe else []) + ["meaning"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [f"`{row.key}`", f"`{format_value(row.default)}`"]
        if recipe:
            cells.append(f"`{format_value(row.value)}`" if row.value != row.default else "")
        cells.append(row.meaning.replace("|", "\\|").replace("<", "&lt;"))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"
