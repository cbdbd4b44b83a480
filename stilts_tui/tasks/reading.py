"""The second study's tasks that need the span heads: MultiRC and ReCoRD (one candidate at a
time), WSC (a span pair), WiC with jiant's word-vector head, and the span-extraction
intermediates QA-SRL and QAMR; read as jiant taskmaster_v1 reads them (jiant/tasks/qa.py,
jiant/tasks/tasks.py; line numbers are that branch's)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

from stilts_tui.errors import DataError
from stilts_tui.tasks.base import (
    CandidateExample,
    Example,
    FilledQuery,
    Pieces,
    SpanExample,
    SpanQAExample,
    SpanTarget,
    SpanVectorExample,
    Task,
)
from stilts_tui.tasks.formats import bounded_lines, find_file, label_index, read_jsonl, read_tsv
from stilts_tui.tasks.hub import load_hub_rows

MAX_LENGTH = 256
EPOCHS = 10
_SUPERGLUE_FILES = {"train": ["train.jsonl"], "dev": ["val.jsonl", "dev.jsonl"]}
_HUB_SPLITS = {"train": "train", "dev": "validation"}


def _bool(path: Path, line: int, value: object) -> int:
    """A SuperGLUE label: true / false (any case) or 1 / 0."""
    text = {"0": "false", "1": "true"}.get(str(value).strip(), str(value).strip().lower())
    return label_index(path, line, text, ("false", "true"))


# --------------------------------------------------------------------------- MultiRC


def _multirc_rows(rows: list[dict], path: Path) -> list[Example]:
    """One candidate per answer option: A = the passage, B = question + answer (qa.py l. 126-127,
    ``boundary_token_fn(para, question + answer)``), grouped by question (l. 143-153)."""
    out: list[Example] = []
    for row in rows:
        line = int(row.get("_line", 0))
        passage = row.get("passage")
        if not isinstance(passage, dict) or not isinstance(passage.get("questions"), list):
            raise DataError(path, "field 'passage' must hold 'text' and a list of 'questions'", line=line)
        for q in passage["questions"]:
            group = f"{row.get('idx')}-{q.get('idx')}"
            for a in q.get("answers", []):
                out.append(CandidateExample(str(passage.get("text", "")), Pieces(str(q["question"]), str(a["text"])),
                                            _bool(path, line, a.get("label", 0)), group, str(a["text"])))
    return out


def _multirc_files(folder: Path, split: str) -> list[Example]:
    path = find_file(folder, _SUPERGLUE_FILES[split])
    return _multirc_rows(read_jsonl(path, ["idx", "passage"]), path)


def _multirc_hub(split: str) -> list[Example]:
    out: list[Example] = []
    for r in load_hub_rows("aps/super_glue", "multirc", _HUB_SPLITS[split]):
        idx = r["idx"]
        out.append(CandidateExample(r["paragraph"], Pieces(str(r["question"]), str(r["answer"])), int(r["label"]),
                                    f"{idx['paragraph']}-{idx['question']}", r["answer"]))
    return out


# --------------------------------------------------------------------------- ReCoRD


def _record_query(passage: str, query: str, entities: list[str], answers: list[str], group: str) -> list[Example]:
    """One candidate per entity of the passage: the query with the entity in place of
    @placeholder (qa.py l. 313-316), right when it is one of the answers (l. 309-311)."""
    golds = tuple(answers)
    longest = max((len(e) for e in entities), default=0)
    return [CandidateExample(passage, FilledQuery(query, ent, longest), int(ent in answers), group, ent, golds)
            for ent in entities]


def _record_files(folder: Path, split: str) -> list[Example]:
    path = find_file(folder, _SUPERGLUE_FILES[split])
    out: list[Example] = []
    for row in read_jsonl(path, ["idx", "passage", "qas"]):
        text = str(row["passage"]["text"])
        # qa.py l. 256-257: entity strings from the passage's character offsets (end inclusive)
        ents = [text[e["start"] : e["end"] + 1] for e in row["passage"]["entities"]]
        for qa in row["qas"]:
            answers = [a["text"] for a in qa.get("answers", [])]
            out += _record_query(text, qa["query"], ents, answers, f"{row['idx']}-{qa['idx']}")
    return out


def _record_hub(split: str) -> list[Example]:
    out: list[Example] = []
    for r in load_hub_rows("aps/super_glue", "record", _HUB_SPLITS[split]):
        idx = r["idx"]
        out += _record_query(r["passage"], r["query"], list(dict.fromkeys(r["entities"])), list(r["answers"]),
                             f"{idx['passage']}-{idx['query']}")
    return out


# --------------------------------------------------------------------------- WSC


def _wsc(row: dict, path: Path, line: int) -> Example:
    """Two word spans of the text (jiant's load_span_data: the index and the span text's word count)."""
    words = tuple(str(row["text"]).split())
    target = row.get("target", row)
    spans = []
    for k in ("1", "2"):
        start = int(target[f"span{k}_index"])
        end = start + len(str(target[f"span{k}_text"]).split())
        if not 0 <= start < end <= len(words):
            raise DataError(path, f"span{k} [{start}, {end}) lies outside the text's {len(words)} words", line=line)
        spans.append((start, end))
    return SpanExample(words, (SpanTarget(spans[0], spans[1], (_bool(path, line, row["label"]),)),))


def _wsc_files(folder: Path, split: str) -> list[Example]:
    path = find_file(folder, _SUPERGLUE_FILES[split])
    return [_wsc(r, path, int(r["_line"])) for r in read_jsonl(path, ["text", "target", "label"])]


def _wsc_hub(split: str) -> list[Example]:
    where = Path("hf://aps/super_glue/wsc.fixed")
    return [_wsc(r, where, i + 1) for i, r in enumerate(load_hub_rows("aps/super_glue", "wsc.fixed", _HUB_SPLITS[split]))]


# --------------------------------------------------------------------------- WiC (jiant's head)


def _wic_span(row: dict, path: Path, line: int) -> Example:
    """The pair and the marked word's characters in each sentence (tasks.py l. 2716-2721)."""
    spans = (int(row["start1"]), int(row["end1"])), (int(row["start2"]), int(row["end2"]))
    return SpanVectorExample(str(row["sentence1"]), str(row["sentence2"]), spans[0], spans[1],
                             _bool(path, line, row["label"]))


def _wic_span_files(folder: Path, split: str) -> list[Example]:
    path = find_file(folder, _SUPERGLUE_FILES[split])
    fields = ["sentence1", "sentence2", "start1", "end1", "start2", "end2", "label"]
    return [_wic_span(r, path, int(r["_line"])) for r in read_jsonl(path, fields)]


def _wic_span_hub(split: str) -> list[Example]:
    where = Path("hf://aps/super_glue/wic")
    return [_wic_span(r, where, i + 1) for i, r in enumerate(load_hub_rows("aps/super_glue", "wic", _HUB_SPLITS[split]))]


# --------------------------------------------------------------------------- QA-SRL and QAMR


def _answer(words: list[str], start: int, end: int) -> tuple[str, int, str]:
    """The context (words joined by spaces), the answer's first character and its text, for
    words [start, end)."""
    context = " ".join(words)
    offset = len(" ".join(words[:start])) + (1 if start else 0)
    return context, offset, " ".join(words[start:end])


def _qasrl_files(folder: Path, split: str) -> list[Example]:
    """Every valid answer span of every question is an example (qa.py l. 509-556): spans are
    [start, end] in the sentence's tokens, end inclusive."""
    path = find_file(folder, [f"orig/{split}.jsonl.gz", f"{split}.jsonl.gz"])
    out: list[Example] = []
    try:
        # Line by line, each bounded (formats.bounded_lines): the decompressed file is never held whole.
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            for number, line in bounded_lines(fh, path):
                out += _qasrl_examples(path, number, line)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not a gzip of UTF-8 JSON lines ({exc})") from None
    return out


def _qasrl_examples(path: Path, number: int, line: str) -> list[Example]:
    """The examples of one QA-SRL record (one line of the file)."""
    out: list[Example] = []
    if not line.strip():
        return out
    try:
        datum = json.loads(line)
        words = list(datum["sentenceTokens"])
        for verb in datum["verbEntries"].values():
            for question, q in verb["questionLabels"].items():
                for judgment in q["answerJudgments"]:
                    if not judgment["isValid"]:
                        continue
                    for s, e in judgment["spans"]:
                        context, start, text = _answer(words, s, e + 1)
                        out.append(SpanQAExample(context, question, start, text, (text,)))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(path, f"not a QA-SRL record ({exc!r})", line=number) from None
    return out


def _qamr_files(folder: Path, split: str) -> list[Example]:
    """Answers are token indices of the sentence; the span runs from the smallest to the largest
    (qa.py l. 697-701). Sentences come from wiki-sentences.tsv by id."""
    sentences_path = find_file(folder, ["qamr/data/wiki-sentences.tsv", "data/wiki-sentences.tsv", "wiki-sentences.tsv"])
    sentences = {r["id"]: r["text"] for r in read_tsv(sentences_path, ["id", "text"], header=False)}
    path = find_file(folder, [f"qamr/data/filtered/{split}.tsv", f"data/filtered/{split}.tsv", f"filtered/{split}.tsv"])
    columns = ["sent_id", "target_ids", "worker_id", "qa_index", "qa_word", "question", "answer", "response1", "response2"]
    out: list[Example] = []
    for r in read_tsv(path, columns, header=False):
        line = int(r["_line"])
        if r["sent_id"] not in sentences:
            raise DataError(path, f"sentence {r['sent_id']!r} is not in {sentences_path.name}", line=line)
        words = sentences[r["sent_id"]].split()
        try:
            idx = [int(i) for i in r["answer"].split()]
        except ValueError:
            raise DataError(path, f"answer {r['answer']!r} is not a list of token indices", line=line) from None
        context, start, text = _answer(words, min(idx), max(idx) + 1)
        out.append(SpanQAExample(context, r["question"], start, text, (text,)))
    return out


def _hub(fn: Callable[[str], list[Example]], name: str) -> dict:
    return {"load_hub": fn, "hub_name": f"aps/super_glue:{name}"}


READING_TASKS: tuple[Task, ...] = (
    Task(name="multirc", train_rows=27243, description="MultiRC (SuperGLUE); each answer option right or wrong, (F1a + EM) / 2",
         head="candidates", labels=("False", "True"), metric="multirc", epochs=EPOCHS, max_length=MAX_LENGTH, batch_size=4,
         dir_names=("MultiRC", "multirc"), load_split=_multirc_files, **_hub(_multirc_hub, "multirc")),
    Task(name="record", train_rows=1730000, description="ReCoRD (SuperGLUE); the best-scored passage entity, (F1 + EM) / 2",
         head="candidates", labels=("False", "True"), metric="record", epochs=EPOCHS, max_length=MAX_LENGTH, batch_size=4,
         dir_names=("ReCoRD", "record"), load_split=_record_files, **_hub(_record_hub, "record")),
    Task(name="wsc", train_rows=554, description="Winograd Schema (SuperGLUE); does the pronoun span refer to the noun span",
         head="span_classification", labels=("False", "True"), metric="accuracy", epochs=40, max_length=MAX_LENGTH,
         batch_size=32, num_spans=2, span_proj_dim=512, dir_names=("WSC", "wsc"), load_split=_wsc_files,
         **_hub(_wsc_hub, "wsc.fixed")),
    Task(name="wic_span", train_rows=5428, description="WiC as the second study ran it: the pair and the word's vectors",
         head="span_vector", labels=("False", "True"), metric="accuracy", epochs=EPOCHS, max_length=MAX_LENGTH,
         batch_size=32, dir_names=("WiC", "wic"), load_split=_wic_span_files, **_hub(_wic_span_hub, "wic")),
    Task(name="qasrl", train_rows=None, description="QA-SRL; the answer span of a question about a verb, (F1 + EM) / 2",
         head="span_qa", metric="squad_f1_em", epochs=EPOCHS, max_length=MAX_LENGTH, batch_size=4,
         dir_names=("QASRL", "qasrl"), load_split=_qasrl_files,
         data_fix="pass --data-dir DIR with QASRL/orig/{train,dev}.jsonl.gz (the QA-SRL Bank 2.0 release)"),
    Task(name="qamr", train_rows=None, description="QAMR; the answer span of a crowd-written question, (F1 + EM) / 2",
         head="span_qa", metric="squad_f1_em", epochs=EPOCHS, max_length=MAX_LENGTH, batch_size=4,
         dir_names=("QAMR", "qamr"), load_split=_qamr_files,
         data_fix="pass --data-dir DIR with QAMR/qamr/data/wiki-sentences.tsv and QAMR/qamr/data/filtered/{train,dev}.tsv"),
)
