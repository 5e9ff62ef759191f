"""Tiny LUKE assets the tests build themselves: a BPE vocabulary, an entity vocabulary, HF models, encoder
inputs, and task data (SQuAD, CoNLL-2003 NER, Open Entity, TACRED-style relations)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

CORPUS = ["Top seed Ana Ivanovic said on Thursday she could hardly believe her luck.",
          "Beyoncé lives in Los Angeles, a city in California.",
          "The netcord helped the new world number one avoid a humiliating exit at Wimbledon.",
          "Ünïcödé wörds and emoji 🙂 are bytes too; naïve café résumé.",
          "Where does Beyoncé live? Who won at Wimbledon? What did the netcord do?"]
ENTITIES = {"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "[MASK2]": 3, "Ana Ivanovic": 4, "Wimbledon": 5,
            "Beyoncé": 6, "Los Angeles": 7}
SIZES = dict(vocab_size=100, entity_vocab_size=20, hidden_size=32, entity_emb_size=16, num_hidden_layers=2,
             num_attention_heads=4, intermediate_size=64, max_position_embeddings=80, type_vocab_size=1,
             layer_norm_eps=1e-5, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


def write_tokenizer(root: Path) -> Path:
    """vocab.json + merges.txt (byte-level BPE trained on CORPUS) + entity_vocab.json."""
    import tokenizers

    root.mkdir(parents=True, exist_ok=True)
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS * 3, vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(root))
    (root / "entity_vocab.json").write_text(json.dumps(ENTITIES))
    return root


def save_hf_luke(root: Path, cls: str = "LukeModel", seed: int = 0, **overrides):
    """A tiny random HF `cls` (LukeModel, LukeForMaskedLM, ...) saved with its tokenizer files in
    `root`/hf; returns (the model, in eval mode, and that directory)."""
    import torch
    import transformers

    src = write_tokenizer(root / "hf")
    vocab = json.loads((src / "vocab.json").read_text())
    torch.manual_seed(seed)
    config = transformers.LukeConfig(**{**SIZES, "vocab_size": len(vocab) + 2, "entity_vocab_size": len(ENTITIES),
                                        **overrides})
    model = getattr(transformers, cls)(config).eval()
    model.save_pretrained(src)
    return model, src


def write_luke_model(root: Path, seed: int = 0, **overrides) -> Path:
    """A tiny random HF LukeModel saved with its tokenizer files, converted into our model directory."""
    from luke_static.formats import convert

    _, src = save_hf_luke(root, seed=seed, **overrides)
    convert("hf", src, root / "model")
    return root / "model"


def inputs(with_entities=True) -> dict[str, np.ndarray]:
    """A padded batch of two rows for an encoder of SIZES (word ids below 100, entity ids below 20)."""
    batch = {
        "input_ids": np.array([[0, 5, 17, 33, 9, 41, 2], [0, 8, 12, 2, 1, 1, 1]], np.int64),
        "attention_mask": np.array([[1] * 7, [1, 1, 1, 1, 0, 0, 0]], np.int64),
        "token_type_ids": np.zeros((2, 7), np.int64),
    }
    if with_entities:
        batch.update({
            "entity_ids": np.array([[3, 7, 11], [2, 0, 0]], np.int64),
            "entity_attention_mask": np.array([[1, 1, 1], [1, 0, 0]], np.int64),
            "entity_token_type_ids": np.zeros((2, 3), np.int64),
            "entity_position_ids": np.array([[[1, 2, 3, -1], [4, -1, -1, -1], [5, 6, -1, -1]],
                                             [[1, 2, -1, -1], [-1] * 4, [-1] * 4]], np.int64),
        })
    return batch


# -- SQuAD 1.1 --------------------------------------------------------------------------------

PARAGRAPHS = [
    ("Beyoncé lives in Los Angeles, a city in California. She moved there in 2015 to record.",
     [("q1", "Where does Beyoncé live?", ["Los Angeles"]), ("q2", "Who lives in Los Angeles?", ["Beyoncé"]),
      ("q3", "Why did she move?", ["to record", "record"])],
     [(0, 7, "Beyoncé"), (17, 28, "Los Angeles")]),
    ("Top seed Ana Ivanovic said on Thursday she could hardly believe her luck as a fortuitous netcord "
     "helped the new world number one avoid a humiliating second round exit at Wimbledon.",
     [("q4", "Who was the top seed?", ["Ana Ivanovic"]), ("q5", "Where was the match?", ["Wimbledon"]),
      ("q6", "When did she speak?", ["Thursday"])],
     [(9, 21, "Ana Ivanovic"), (165, 174, "Wimbledon")]),
    ("Ünïcödé wörds and emoji 🙂 are bytes too; naïve café résumé.",
     [("q7", "What are bytes too?", ["Ünïcödé wörds and emoji"]), ("q8", "Which café?", ["naïve café"])], []),
]


def squad_json(with_entities: bool = False) -> dict:
    paragraphs = []
    for context, questions, entities in PARAGRAPHS:
        qas = [{"id": qid, "question": q,
                "answers": [{"text": a, "answer_start": context.index(a)} for a in answers]}
               for qid, q, answers in questions]
        paragraph = {"context": context, "qas": qas}
        if with_entities:
            paragraph["entities"] = [{"start": s, "end": e, "title": t} for s, e, t in entities]
        paragraphs.append(paragraph)
    return {"version": "1.1", "data": [{"title": "tiny", "paragraphs": paragraphs}]}


def write_squad(path: Path, with_entities: bool = False) -> Path:
    path.write_text(json.dumps(squad_json(with_entities), ensure_ascii=False))
    return path


# -- CoNLL-2003 NER ---------------------------------------------------------------------------

NAMES = {"PER": ["Ana Ivanovic", "Beyoncé"], "LOC": ["Los Angeles", "California", "Wimbledon"],
         "ORG": ["the netcord", "Top seed"]}
NER_FRAMES = ["{PER} lives in {LOC} .", "{PER} said on Thursday that {ORG} helped .", "In {LOC} , {PER} met {PER} ."]


def conll(n: int, seed: int, iob1: bool = False) -> str:
    """`n` sentences in CoNLL-2003 layout (4 columns), three per document."""
    rng, lines = random.Random(seed), []
    for i in range(n):
        if i % 3 == 0:
            lines += ["-DOCSTART- -X- -X- O", ""]
        frame = rng.choice(NER_FRAMES)
        for token in frame.split():
            if token.startswith("{"):
                kind = token[1:-1]
                for k, word in enumerate(rng.choice(NAMES[kind]).split()):
                    tag = f"{'I' if iob1 or k else 'B'}-{kind}"
                    lines.append(f"{word} NNP B-NP {tag}")
            else:
                lines.append(f"{token} XX O O")
        lines.append("")
    return "\n".join(lines) + "\n"


# -- Open Entity ------------------------------------------------------------------------------

MENTIONS = [("Ana Ivanovic", ["person"]), ("Beyoncé", ["person", "entity"]), ("Los Angeles", ["location", "place"]),
            ("California", ["location"]), ("Wimbledon", ["event", "place"]), ("Thursday", ["time"])]
TYPED_FRAMES = ["Top seed {} said on Thursday she could hardly believe her luck.",
                "We heard that {} -LRB- again -RRB- was in the news.",
                "{} helped the new world number one.", "Yesterday {} was mentioned twice in the news.",
                "Reports say that {} changed everything."]


def typed_records() -> list[dict]:
    """Every mention in every frame, as Open Entity records (frame by frame, mentions in MENTIONS order)."""
    out = []
    for frame in TYPED_FRAMES:
        for mention, labels in MENTIONS:
            sent = frame.format(mention)
            start = sent.index(mention)
            out.append({"sent": sent, "start": start, "end": start + len(mention), "labels": labels})
    return out


# -- TACRED-style relations -------------------------------------------------------------------

PEOPLE = ["Ana Ivanovic", "Beyoncé", "the teacher"]
PLACES = ["Los Angeles", "Wimbledon", "California"]
# The relation follows from the verb between the two mentions.
RELATION_FRAMES = {"per:cities_of_residence": "{s} lives in {o} .", "per:origin": "{s} was born in {o} .",
                   "no_relation": "{s} thought about {o} ."}


def relation_records(n: int, seed: int) -> list[dict]:
    rng, out = random.Random(seed), []
    for i in range(n):
        relation = rng.choice(sorted(RELATION_FRAMES))
        s, o = rng.choice(PEOPLE), rng.choice(PLACES)
        words = RELATION_FRAMES[relation].format(s="\x00", o="\x01").split()
        tokens, spans = [], {}
        for w in words:
            if w in ("\x00", "\x01"):
                mention = (s if w == "\x00" else o).split()
                spans[w] = (len(tokens), len(tokens) + len(mention) - 1)  # inclusive, as TACRED
                tokens += mention
            else:
                tokens.append(w)
        if i % 5 == 0:
            tokens = ["-LRB-", "news", "-RRB-"] + tokens
            spans = {k: (a + 3, b + 3) for k, (a, b) in spans.items()}
        out.append({"id": f"r{i}", "relation": relation, "token": tokens, "subj_start": spans["\x00"][0],
                    "subj_end": spans["\x00"][1], "obj_start": spans["\x01"][0], "obj_end": spans["\x01"][1],
                    "subj_type": "PERSON", "obj_type": "LOCATION"})
    return out


# -- mLUKE ------------------------------------------------------------------------------------

MLUKE_CORPUS = ["东京是日本的首都，也是世界上最大的城市之一。", "北京大学位于北京市海淀区，历史很长！",
                "我在上海的大学学习（经济）：很有意思？", "東京は日本の首都です。大阪も大きな都市です！",
                "「こんにちは」と彼は言った。私は東京大学で勉強しています（笑）",
                "Angela Merkel war Bundeskanzlerin der Bundesrepublik Deutschland.",
                "Die Straße in München ist schön, aber größer als in Köln; über die Brücke!",
                "Angela Merkel lives in Berlin and visited Tokyo, Beijing and Osaka.",
                "Top seed Ana Ivanovic said on Thursday she could hardly believe her luck.",
                "Email me @ home: #1 and #2 are (almost) the same?"]
MLUKE_ENTITIES = {"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "ja:東京": 3, "en:Tokyo": 4, "zh:北京大学": 5, "zh:东京": 6,
                  "de:München": 7, "en:Angela Merkel": 8, "de:Angela Merkel": 9, "en:Berlin": 10, "[MASK2]": 11}


def write_mluke_tokenizer(root: Path) -> Path:
    """An mLUKE tokenizer directory: `sentencepiece.bpe.model` (a SentencePiece unigram model trained on
    MLUKE_CORPUS in about a second, with XLM-R's <unk>, <s>, </s> and its NFKC normaliser),
    `entity_vocab.json` (MLUKE_ENTITIES: "{language}:{title}" names) and `tokenizer_config.json`."""
    import io

    import sentencepiece

    root.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(MLUKE_CORPUS * 4), model_writer=model, model_type="unigram", vocab_size=300,
        hard_vocab_limit=False, character_coverage=1.0, num_threads=1, minloglevel=2)
    (root / "sentencepiece.bpe.model").write_bytes(model.getvalue())
    (root / "entity_vocab.json").write_text(json.dumps(MLUKE_ENTITIES, ensure_ascii=False), encoding="utf-8")
    (root / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "MLukeTokenizer", "max_entity_length": 32, "max_mention_length": 30}))
    return root


def mluke_vocab(directory: Path) -> list[tuple[str, float]]:
    """The word vocabulary of `directory`'s SentencePiece model in XLM-R's layout, as transformers 5's
    `MLukeTokenizer(vocab=...)` takes it (given the file it encodes every piece as id 0)."""
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(directory / "sentencepiece.bpe.model"))
    pieces = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(3, sp.get_piece_size())]
    return [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *pieces, ("<mask>", 0.0)]


def save_hf_mluke(root: Path, cls: str = "LukeModel", **overrides):
    """A tiny random HF `cls` over an mLUKE vocabulary (SentencePiece + `<mask>`, `<ent>`, `<ent2>`; no
    entity-aware attention, as the mLUKE releases), saved beside its tokenizer files."""
    import sentencepiece
    import torch
    import transformers

    src = write_mluke_tokenizer(root / "hf")
    pieces = sentencepiece.SentencePieceProcessor(model_file=str(src / "sentencepiece.bpe.model")).get_piece_size()
    torch.manual_seed(0)
    config = transformers.LukeConfig(**{**SIZES, "vocab_size": pieces + 4, "entity_vocab_size": len(MLUKE_ENTITIES),
                                        "use_entity_aware_attention": False, "max_position_embeddings": 130,
                                        **overrides})
    model = getattr(transformers, cls)(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(src)
    return model, src
