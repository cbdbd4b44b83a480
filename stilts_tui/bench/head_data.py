"""Small data sets, in each task's official release format, for every head family the worker has:
what `stilts bench gpu` smoke-trains on a machine without the real data, and what the head tests
read. Each record is a hand-made example (so the tests can check what a loader makes of it);
`copies` repeats the records, each copy with its own ids, so a benchmark has enough rows for a
few optimizer steps.

Families and the task each is read through: multiple choice (COPA), span QA (QA-SRL, QAMR),
tagging (CCG), span classification (WSC, edge probing SPR2), candidates (MultiRC, ReCoRD), span
vectors (WiC's word spans)."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

MULTIRC = {"idx": 0, "version": 1.1, "passage": {"text": "The cat sat on the mat. It was warm.", "questions": [
    {"question": "Where did the cat sit?", "idx": 0, "answers": [
        {"text": "On the mat", "idx": 0, "label": 1}, {"text": "In the car", "idx": 1, "label": 0}]},
    {"question": "Was it cold?", "idx": 1, "answers": [
        {"text": "No", "idx": 2, "label": 1}, {"text": "Yes", "idx": 3, "label": 0}]}]}}
RECORD_TEXT = "Paris is the capital of France. Berlin is in Germany."
RECORD = {"idx": 7, "passage": {"text": RECORD_TEXT, "entities": [
    {"start": 0, "end": 4}, {"start": 24, "end": 29}, {"start": 32, "end": 37}, {"start": 45, "end": 51}]},
    "qas": [{"query": "@placeholder is a city in France.", "idx": 3, "answers": [{"start": 0, "end": 4, "text": "Paris"}]}]}
WSC = [{"text": "Mark told Pete many lies about himself , which Pete included in his book .", "idx": 0, "label": False,
        "target": {"span1_index": 0, "span1_text": "Mark", "span2_index": 13, "span2_text": "his"}},
       {"text": "The trophy does not fit into the brown suitcase because it is too large .", "idx": 1, "label": True,
        "target": {"span1_index": 0, "span1_text": "The trophy", "span2_index": 10, "span2_text": "it"}}]
WIC = [{"word": "bank", "sentence1": "He sat on the bank of the river.", "sentence2": "The bank lent money.",
        "start1": 14, "end1": 18, "start2": 4, "end2": 8, "idx": 0, "label": False, "version": 1.1},
       {"word": "run", "sentence1": "I run daily.", "sentence2": "They run fast.", "start1": 2, "end1": 5,
        "start2": 5, "end2": 8, "idx": 1, "label": True, "version": 1.1}]
COPA = [{"premise": "The man broke his toe.", "choice1": "He dropped a hammer on his foot.",
         "choice2": "He got a hole in his sock.", "question": "cause", "label": 0, "idx": 0},
        {"premise": "I tipped the bottle.", "choice1": "The liquid in the bottle froze.",
         "choice2": "The liquid in the bottle poured out.", "question": "effect", "label": 1, "idx": 1}]
QASRL = {"sentenceId": "s1", "sentenceTokens": ["The", "dog", "chased", "the", "red", "ball", "."], "verbEntries": {
    "2": {"verbInflectedForms": {"stem": "chase"}, "questionLabels": {
        "What chased something?": {"answerJudgments": [{"isValid": True, "spans": [[0, 1]]},
                                                       {"isValid": False}]},
        "What did something chase?": {"answerJudgments": [{"isValid": True, "spans": [[3, 5]]}]}}}}}
EDGE_RECORDS: list[dict] = [
    {"text": "Alice gave Bob a book .", "targets": [
        {"span1": [1, 2], "span2": [0, 1], "label": ["awareness", "volition"]},
        {"span1": [1, 2], "span2": [3, 5], "label": ["changes_possession"]}]},
    {"text": "It rained .", "targets": []},
    {"text": "Bob read the book .", "targets": [{"span1": [1, 2], "span2": [0, 1], "label": ["awareness"]}]}]
QAMR_SENTENCES = "w1\tThe old man fed the birds in the park .\n"
QAMR_ROWS = ("w1\t2\tworker\t0\tfed\tWho fed the birds?\t1 2\told man\tman\n"
             "w1\t2\tworker\t1\tpark\tWhere were birds fed?\t6 7 8\tthe park\tpark\n")
CCG_ROWS = [("The dog barked", "3 7 12"), ("Cats sleep", "7 12")]

# The task each head family is smoke-trained through (stilts bench gpu).
FAMILY_TASKS = {"multiple_choice": "copa", "span_qa": "qasrl", "tagging": "ccg", "span_classification": "edges_spr2",
                "candidates": "multirc", "candidates_record": "record", "span_vector": "wic_span"}


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _copies(rows: list[dict], copies: int, renumber) -> list[dict]:
    out = []
    for k in range(copies):
        for row in rows:
            row = copy.deepcopy(row)
            renumber(row, k)
            out.append(row)
    return out


def _idx(row: dict, k: int) -> None:
    row["idx"] = row["idx"] + 1000 * k


def _multirc_idx(row: dict, k: int) -> None:
    row["idx"] = row["idx"] + 1000 * k
    for q in row["passage"]["questions"]:
        q["idx"] = q["idx"] + 1000 * k
        for a in q["answers"]:
            a["idx"] = a["idx"] + 1000 * k


def _record_idx(row: dict, k: int) -> None:
    row["idx"] = row["idx"] + 1000 * k
    for q in row["qas"]:
        q["idx"] = q["idx"] + 1000 * k


def write_head_data(root: Path, copies: int = 1) -> Path:
    """Every head family's data under `root`, as `data_dir` expects it (each task's own folder)."""
    for split in ("train", "val"):
        _jsonl(root / "MultiRC" / f"{split}.jsonl", _copies([MULTIRC], copies, _multirc_idx))
        _jsonl(root / "ReCoRD" / f"{split}.jsonl", _copies([RECORD], copies, _record_idx))
        _jsonl(root / "WSC" / f"{split}.jsonl", _copies(WSC, copies, _idx))
        _jsonl(root / "WiC" / f"{split}.jsonl", _copies(WIC, copies, _idx))
        _jsonl(root / "COPA" / f"{split}.jsonl", _copies(COPA, copies, _idx))
    (root / "QASRL" / "orig").mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev"):
        rows = [QASRL | {"sentenceId": f"s{k}"} for k in range(copies)]
        with gzip.open(root / "QASRL" / "orig" / f"{split}.jsonl.gz", "wt", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(r) + "\n" for r in rows))
    qamr = root / "QAMR" / "qamr" / "data"
    (qamr / "filtered").mkdir(parents=True, exist_ok=True)
    (qamr / "wiki-sentences.tsv").write_text(QAMR_SENTENCES, encoding="utf-8")
    for split in ("train", "dev"):
        (qamr / "filtered" / f"{split}.tsv").write_text(QAMR_ROWS * copies, encoding="utf-8")
    spr = root / "edges" / "spr2"
    _jsonl(spr / "edges.train.json", EDGE_RECORDS * copies)
    _jsonl(spr / "edges.dev.json", EDGE_RECORDS * copies)
    (spr / "labels.txt").write_text("awareness\nchanges_possession\nvolition\n", encoding="utf-8")
    ccg = root / "CCG"
    ccg.mkdir(exist_ok=True)
    for split in ("train", "dev"):
        lines = [f"{i}\t{words}\t{tags}\n" for i, (words, tags) in enumerate(CCG_ROWS * copies)]
        (ccg / f"ccg.{split}").write_text("idx\tsentence\ttags\n" + "".join(lines), encoding="utf-8")
    return root
