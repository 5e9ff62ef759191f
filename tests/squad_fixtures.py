"""A tiny SQuAD 1.1 file the tests write themselves."""

from __future__ import annotations

import json
from pathlib import Path

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
