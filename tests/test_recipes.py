"""Every recipe in configs/ runs as shipped: only data and model paths (and the step count) change.

A recipe is what users copy; a key it sets that its own defaults make
meaningless (freezing a table the configuration does not build, say) must not
stop a run. Each recipe trains a few steps through the real command
(`engine.cli.train`), evaluates and exports. The one exception to "as
shipped" is `elmo_base`'s (and `elmo_manylangs`') batch: at 128 rows of a 4096-cell biLM a CPU step
takes half a minute; the keys and their combination are what this checks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.cli import train

from helpers.corpus import write_toy_corpus, write_toy_tagging

pytest.importorskip("transformers")

from helpers.luke import conll, relation_records, typed_records, write_luke_model, write_squad  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted(p.stem for p in CONFIGS.glob("*.yaml"))


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Tiny data for every job, and a tiny LUKE whose positions reach the recipes' 512 tokens."""
    root = tmp_path_factory.mktemp("assets")
    corpus = write_toy_corpus(root / "corpus")
    # The recipes sample 1024 or 8000 negatives: the vocabulary must be larger than that.
    big_vocab = root / "vocab_8k.txt"
    big_vocab.write_text(Path(corpus["vocab"]).read_text() + "".join(f"rare{i}\n" for i in range(8100)))
    return {"root": root, "corpus": corpus, "big_vocab": str(big_vocab), "tagging": write_toy_tagging(root / "lac"),
            "luke": write_luke_model(root / "luke", max_position_embeddings=520)}


def _luke_data(root: Path, recipe: str) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    if recipe == "squad":
        data = str(write_squad(root / "squad.json"))
        return {"data.train": data, "data.dev": data}
    if recipe == "open_entity":
        (root / "oe.json").write_text(json.dumps(typed_records(), ensure_ascii=False))
        files = [root / "oe.json"] * 3
    elif recipe == "classify":
        rows = [{"text": f"{word} {i}", "label": word} for i in range(16) for word in ("Beyoncé", "Wimbledon")]
        (root / "texts.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        files = [root / "texts.jsonl"] * 3
    elif recipe == "ner":
        (root / "train.txt").write_text(conll(12, seed=1))
        (root / "dev.txt").write_text(conll(6, seed=2))
        files = [root / "train.txt", root / "dev.txt", root / "dev.txt"]
    else:
        (root / "train.json").write_text(json.dumps(relation_records(16, seed=1)))
        (root / "dev.json").write_text(json.dumps(relation_records(8, seed=2)))
        files = [root / "train.json", root / "dev.json", root / "dev.json"]
    return dict(zip(("data.train", "data.dev", "data.test"), map(str, files)))


def _overrides(recipe: str, assets: dict, out: Path) -> dict:
    corpus = assets["corpus"]
    paths = {"train.output_dir": str(out / "run"), "train.max_steps": 2}
    # The built-in corpus (what `sh run.sh` reads) has its own tests; the recipes read files here.
    files = {"data.source": "files", "data.train": corpus["train"], "data.dev": corpus["dev"],
             "data.vocab": assets["big_vocab"]}
    if recipe in ("elmo", "elmo_char"):
        return {**paths, **files}
    if recipe == "elmo_base":
        return {**paths, **files, "train.batch_size": 2}
    if recipe == "elmo_manylangs":  # continues from an import of the architecture every released model has
        pytest.importorskip("elmoformanylangs")
        from bilm.manylangs import import_manylangs

        from helpers.manylangs import build_model

        import_manylangs(build_model(out / "zh.model", config_by_name=True), out / "imported")
        return {**paths, **files, "train.batch_size": 2, "train.init_from": str(out / "imported")}
    if recipe == "lac":
        elmo = train(["--config", str(CONFIGS / "elmo.yaml"), *_args({
            **files, "train.output_dir": str(out / "elmo"), "train.max_steps": 2})])
        assert elmo, "the ELMo run the tagger reads did not finish"
        tagging = assets["tagging"]
        return {**paths, "data.train": tagging["train"], "data.dev": tagging["dev"],
                "model.elmo_model": str(out / "elmo" / "model")}
    return {**paths, **_luke_data(out / "data", recipe), "model.luke": str(assets["luke"])}


def _args(overrides: dict) -> list[str]:
    return [a for k, v in overrides.items() for a in ("-o", f"{k}={v}")]


def test_every_recipe_is_covered():
    assert RECIPES == ["classify", "elmo", "elmo_base", "elmo_char", "elmo_manylangs", "lac", "ner", "open_entity",
                       "relation", "squad"]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
def test_the_recipe_runs_as_shipped(recipe, assets, tmp_path, static_scope, capsys):
    metrics = train(["--config", str(CONFIGS / f"{recipe}.yaml"), *_args(_overrides(recipe, assets, tmp_path))])
    assert metrics, f"{recipe}: no final evaluation"
    out = capsys.readouterr().out
    exported = re.search(r"exported [a-z ]*program: (\S+\.json)", out)
    assert exported and Path(exported.group(1)).is_file(), f"{recipe}: nothing exported\n{out}"
    if recipe == "squad":  # the recipe freezes an entity table its words-only default does not build
        assert "optim.freeze: 'entity_embeddings.entity_embeddings.weight' is not built" in out
