"""The offline demo's two tasks, generated deterministically (no download, no weights).

demo_realfake — the intermediate, a real-vs-fake discrimination task in the spirit of
  Synthesis_GPT2 / Hella-sh: a sentence is cut in half; the model must pick its true second half
  among four, the three fakes being second halves of other sentences with their words shuffled.
  Written in the Synthesis format (jsonl: ctx, endings[4], label).
demo_acceptability — the target, a CoLA-like acceptability task: a sentence of the same kind,
  either as generated (acceptable) or with a window of 8 words shuffled (unacceptable); scored
  with Matthews correlation like CoLA. Written in CoLA's raw format (tsv, no header: source,
  label, original judgment, sentence)."""

from __future__ import annotations

import random
from pathlib import Path

from stilts_tui.data.jsonl import write_jsonl

NAMES = ["Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kemal", "Lucia",
         "Marta", "Nikos", "Olga", "Pedro"]
VERBS = ["bought", "painted", "repaired", "found", "sold", "cleaned", "borrowed", "carried", "lost", "built"]
ADJS = ["red", "old", "heavy", "small", "broken", "new", "wooden", "shiny", "large", "cheap"]
OBJS = ["bicycle", "table", "lamp", "guitar", "boat", "clock", "chair", "kettle", "ladder", "radio"]
PLACES = ["garage", "market", "kitchen", "harbour", "garden", "school", "station", "library", "attic", "village"]
TIMES = ["on Monday", "last winter", "before dinner", "in the morning", "after the storm", "at midnight"]
REASONS = ["because the neighbours had asked for help", "so that the children could use it again",
           "although nobody had noticed it for years", "while the rain was falling on the roof",
           "before the visitors arrived from the city", "after a long and tiring week at work"]

TASK_FILES = ("demo_acceptability.toml", "demo_realfake.toml")


def _event(rng: random.Random) -> dict:
    return {"name": rng.choice(NAMES), "verb": rng.choice(VERBS), "adj": rng.choice(ADJS), "obj": rng.choice(OBJS),
            "place": rng.choice(PLACES), "time": rng.choice(TIMES)}


def _sentence(e: dict) -> str:
    return f"{e['name']} {e['verb']} the {e['adj']} {e['obj']} in the {e['place']} {e['time']}."


def _scramble(words: list[str], rng: random.Random) -> list[str]:
    """Shuffle a window of 8 words somewhere in the sentence, so it no longer reads as English."""
    out = list(words)
    while out == words:
        start = rng.randrange(0, len(words) - 7)
        window = out[start : start + 8]
        rng.shuffle(window)
        out[start : start + 8] = window
    return out


def acceptability_rows(n: int, rng: random.Random) -> list[tuple[str, int]]:
    rows = []
    for i in range(n):
        words = f"{_sentence(_event(rng))[:-1]} {rng.choice(REASONS)}.".split()
        rows.append((" ".join(words if i % 2 == 0 else _scramble(words, rng)), int(i % 2 == 0)))
    rng.shuffle(rows)
    return rows


def realfake_rows(n: int, rng: random.Random) -> list[dict]:
    sentences = [f"{_sentence(_event(rng))[:-1]} {rng.choice(REASONS)}." for _ in range(n)]
    halves = []
    for s in sentences:
        words = s.split()
        halves.append((" ".join(words[: len(words) // 2]), " ".join(words[len(words) // 2 :])))
    rows = []
    for i, (ctx, ending) in enumerate(halves):
        fakes: list[str] = []
        while len(fakes) < 3:
            j = rng.randrange(len(halves))
            if j == i:
                continue
            words = halves[j][1].split()
            rng.shuffle(words)
            fakes.append(" ".join(words))
        label = rng.randrange(4)
        fakes.insert(label, ending)
        rows.append({"ctx": ctx, "endings": fakes, "label": label})
    return rows


def build(out: Path, seed: int = 0, target_train: int = 160, target_dev: int = 128,
          realfake_train: int = 192, realfake_dev: int = 96) -> dict[str, dict[str, int]]:
    """Write demo_acceptability/{train,dev}.tsv and demo_realfake/{train,dev}.jsonl under ``out``."""
    rng = random.Random(seed)
    counts: dict[str, dict[str, int]] = {"demo_acceptability": {}, "demo_realfake": {}}
    target = out / "demo_acceptability"
    target.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", target_train), ("dev", target_dev)):
        rows = acceptability_rows(n, rng)
        text = "".join(f"demo\t{y}\t{'' if y else '*'}\t{s}\n" for s, y in rows)
        (target / f"{split}.tsv").write_text(text, encoding="utf-8")
        counts["demo_acceptability"][split] = len(rows)
    for split, n in (("train", realfake_train), ("dev", realfake_dev)):
        counts["demo_realfake"][split] = write_jsonl(out / "demo_realfake" / f"{split}.jsonl", realfake_rows(n, rng))
    return counts
