from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from engine.config import load_config
from engine.errors import ConfigError


@dataclass
class Inner:
    size: int = 4
    rate: float = 0.5
    name: str = "x"
    mode: Literal["a", "b"] = "a"
    tags: list[str] = field(default_factory=list)
    limit: Optional[int] = None


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    flag: bool = False


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_yaml_and_overrides_become_typed_values(tmp_path):
    path = write(tmp_path, "inner:\n  size: 8\n  rate: 1e-3\nflag: true\n")
    cfg = load_config(Outer, path, ["inner.name=123", "inner.mode=b", "inner.tags=[p, q]", "inner.limit=7"])
    assert cfg.inner.size == 8 and cfg.inner.rate == 1e-3
    assert cfg.inner.name == "123"  # a string field keeps the text
    assert cfg.inner.mode == "b" and cfg.inner.tags == ["p", "q"] and cfg.inner.limit == 7
    assert cfg.flag is True


@pytest.mark.parametrize("text, overrides, message", [
    ("inner:\n  sise: 8\n", [], "unknown key 'inner.sise' (did you mean 'size'?)"),
    ("inner:\n  size: eight\n", [], "'inner.size' must be an int"),
    ("inner:\n  size: true\n", [], "'inner.size' must be an int"),
    ("flag: 1\n", [], "'flag' must be true or false"),
    ("inner:\n  mode: c\n", [], "'inner.mode' must be one of ['a', 'b']"),
    ("", ["inner.nope=1"], "unknown key 'inner.nope'"),
    ("", ["flag.x=1"], "'flag' is not a section"),
    ("", ["inner.size"], "must look like section.key=value"),
    ("inner: [1, 2]\n", [], "'inner' must be a mapping"),
    ("inner:\n  size: [1\n", [], "not valid YAML"),
])
def test_mistakes_name_the_key(tmp_path, text, overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(Outer, write(tmp_path, text), overrides)
    assert message in str(err.value)


@dataclass
class Job:
    inner: Inner = field(default_factory=lambda: Inner(size=99, name="job"))


def test_a_partial_section_keeps_the_job_defaults(tmp_path):
    cfg = load_config(Job, write(tmp_path, "inner:\n  rate: 2.0\n"), ["inner.mode=b"])
    assert (cfg.inner.size, cfg.inner.name, cfg.inner.rate, cfg.inner.mode) == (99, "job", 2.0, "b")


def test_missing_file_is_one_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(Outer, tmp_path / "absent.yaml")


def test_shipped_configs_load():
    from bilm.pretrain_config import ElmoConfig

    for name in ("configs/elmo.yaml", "configs/elmo_base.yaml"):
        cfg = load_config(ElmoConfig, name)
        assert cfg.model.num_layers == 2
    base = load_config(ElmoConfig, "configs/elmo_base.yaml")
    assert (base.train.batch_size, base.data.num_steps, base.model.embed_size, base.model.hidden_size,
            base.model.num_samples, base.model.dropout, base.model.cell_clip) == (128, 20, 512, 4096, 8000, 0.1, 3.0)
