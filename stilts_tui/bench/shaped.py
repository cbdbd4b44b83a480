"""Benchmark inputs shaped like the study's without its data or weights.

`rte-shaped`: a task in RTE's official GLUE format with RTE's size (2,490 train / 277 dev) and
its premise and hypothesis lengths, drawn from the word-count percentiles of the real training
set (measured once on GLUE RTE train; no text of it is kept). Speed depends on lengths, not on
what the words say, so a GPU machine without the data can still time the paper's RTE grid.

`roberta-large-random`: a randomly initialised encoder with RoBERTa-large's shape (24 layers,
hidden 1024, 16 heads, FFN 4096, 514 positions) and a byte-level BPE trained on the task's own
texts, so sequences tokenise to realistic lengths. Its vocabulary (8,000) is smaller than
RoBERTa's 50,265, which leaves out 43 M embedding parameters that cost memory but almost no
FLOPs."""

from __future__ import annotations

import random
from pathlib import Path

from stilts_tui.data.demo import ADJS, NAMES, OBJS, PLACES, REASONS, TIMES, VERBS

# Word counts (whitespace split) of GLUE RTE train at the 0th, 5th, ..., 100th percentile.
PREMISE_WORDS = [4, 13, 16, 18, 20, 22, 24, 26, 27, 29, 31, 33, 35, 38, 43, 55, 71, 84, 96, 112, 239]
HYPOTHESIS_WORDS = [3, 4, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 10, 11, 12, 14, 18, 41]
# The generated words are one BPE token each; real RTE pairs tokenise to 70.2 word pieces on average
# (61.8 when cut at RTE's 100 tokens; all-MiniLM-L6-v2's WordPiece on GLUE RTE train), about 1.3
# per word, so drawn word counts are stretched by that much to match.
PIECES_PER_WORD = 1.3
RTE_SIZES = {"train": 2490, "dev": 277}
SHAPED_TASKS = {"rte-shaped": "rte"}
SHAPED_MODELS = {"roberta-large-random": dict(hidden=1024, layers=24, heads=16, max_positions=512)}
_WORDS = [w for group in (NAMES, VERBS, ADJS, OBJS, PLACES, TIMES, REASONS) for phrase in group for w in phrase.split()]


def draw_length(percentiles: list[int], rng: random.Random) -> int:
    """A length from the distribution the percentiles describe (linear between them)."""
    u = rng.random() * (len(percentiles) - 1)
    i = min(int(u), len(percentiles) - 2)
    return max(1, round(percentiles[i] + (u - i) * (percentiles[i + 1] - percentiles[i])))


def _text(n_words: int, rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n_words)).capitalize() + "."


def write_rte_shaped(out: Path, seed: int = 0, sizes: dict[str, int] | None = None) -> Path:
    """RTE's train.tsv and dev.tsv (index, sentence1, sentence2, label) under ``out``."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    for split, n in (sizes or RTE_SIZES).items():
        lines = ["index\tsentence1\tsentence2\tlabel"]
        for i in range(n):
            label = "entailment" if rng.random() < 0.5 else "not_entailment"
            premise, hypothesis = (round(draw_length(q, rng) * PIECES_PER_WORD) for q in (PREMISE_WORDS, HYPOTHESIS_WORDS))
            lines.append(f"{i}\t{_text(premise, rng)}\t{_text(hypothesis, rng)}\t{label}")
        (out / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out

