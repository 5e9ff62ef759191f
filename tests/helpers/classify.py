"""Classification files for the tests: rows of topic words, written as TSV, CSV or JSONL."""

from __future__ import annotations

import csv
import json
import random

# Each label's texts share words, so a tiny model separates them in a few steps.
TOPICS = {"sport": "seed won Wimbledon after netcord luck", "music": "Beyoncé sings song live tonight loud",
          "city": "Los Angeles city California big sunny"}


def rows(n: int, seed: int, pairs: bool = False) -> list[dict]:
    """`n` rows of a topic's words shuffled, with the topic as label; with `pairs`, a second text whose
    topic is the label (so a model that reads the first text alone cannot learn it)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        topic = rng.choice(sorted(TOPICS))
        words = TOPICS[topic].split()
        text = " ".join(rng.sample(words, k=len(words) - 2))
        if not pairs:
            out.append({"text": text, "label": topic})
            continue
        other = rng.choice(sorted(TOPICS))
        second = " ".join(rng.sample(TOPICS[other].split(), k=4))
        out.append({"text": text, "text_pair": second, "label": f"then {other}"})
    return out


def write(path, records: list[dict]) -> str:
    """`records` as TSV, CSV or JSONL by the path's extension."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    elif path.suffix == ".tsv":  # GLUE's: tabs, no quoting
        lines = ["\t".join(records[0]), *("\t".join(r.values()) for r in records)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(records[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(records)
    return str(path)
