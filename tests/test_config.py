from dataclasses import dataclass, field
from typing import Literal

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
    limit: int | None = None


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
    from bilm.pretrain import ElmoConfig

    for name in ("configs/elmo.yaml", "configs/elmo_base.yaml"):
        cfg = load_config(ElmoConfig, name)
        assert cfg.model.num_layers == 2
    base = load_config(ElmoConfig, "configs/elmo_base.yaml")
    assert (base.train.batch_size, base.data.num_steps, base.model.embed_size, base.model.hidden_size,
            base.model.num_samples, base.model.dropout, base.model.cell_clip) == (128, 20, 512, 4096, 8000, 0.1, 3.0)


def test_a_recipe_extends_its_base_and_names_its_job(tmp_path):
    from engine.cli import job_class

    (tmp_path / "base.yaml").write_text("job: tests.Nothing\ninner:\n  size: 8\n  rate: 2.0\nflag: true\n")
    (tmp_path / "top.yaml").write_text("base: base.yaml\ninner:\n  rate: 3.0\n")
    cfg = load_config(Outer, tmp_path / "top.yaml", ["inner.name=z"])
    assert (cfg.inner.size, cfg.inner.rate, cfg.inner.name, cfg.flag) == (8, 3.0, "z", True)
    with pytest.raises(ConfigError, match="job 'tests.Nothing' not found"):
        job_class(tmp_path / "top.yaml")
    (tmp_path / "nojob.yaml").write_text("inner:\n  size: 1\n")
    with pytest.raises(ConfigError, match="'job' must name a job class"):
        job_class(tmp_path / "nojob.yaml")


JOBS = {"elmo": "ElmoPretraining", "elmo_base": "ElmoPretraining", "elmo_char": "ElmoPretraining",
        "lac": "TaggerTraining", "squad": "SquadTraining", "open_entity": "OpenEntityTraining",
        "relation": "RelationTraining", "ner": "NerTraining"}


@pytest.mark.parametrize("name", sorted(JOBS))
def test_every_recipe_names_its_job_and_every_key_has_a_meaning(name):
    from engine.cli import job_class
    from engine.config import describe

    cls = job_class(f"configs/{name}.yaml")
    assert cls.__name__ == JOBS[name]
    cfg = load_config(cls.config_class, f"configs/{name}.yaml")
    rows = describe(cfg, cls.config_class())
    assert [r.key for r in rows if not r.meaning] == []
    changed = [r.key for r in rows if r.value != r.default]
    assert len(changed) <= 12, changed  # a recipe holds what differs, not every default


def test_the_docs_key_table_is_generated_from_the_dataclasses():
    import re
    from pathlib import Path

    from bilm.pretrain import ElmoConfig
    from engine.config import describe, key_table

    page = Path(__file__).resolve().parents[1] / "docs" / "elmo.md"
    found = re.search(r"<!-- keys: configs/elmo.yaml -->\n(.*?)<!-- /keys -->", page.read_text(), re.S)
    assert found, "docs/elmo.md lost its key-table markers"
    table = key_table(describe(load_config(ElmoConfig, "configs/elmo.yaml"), ElmoConfig()), "configs/elmo.yaml")
    assert found.group(1) == table, ("docs/elmo.md's key table is stale: paste the output of "
                                     "`python -m engine --config configs/elmo.yaml --show markdown`")
