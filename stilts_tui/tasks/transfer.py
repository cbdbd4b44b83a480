"""The second study's sentence-level intermediates and targets (Pruksachatkun et al. 2020): SST-2,
QQP, MNLI, SciTail, BoolQ, CommitmentBank, COPA and CommonsenseQA, read as jiant's taskmaster_v1
branch reads them (jiant/tasks/tasks.py, jiant/tasks/qa.py; line numbers below are that branch's).

Defaults are the study's: 10 epochs (40 for CB and COPA, base_roberta.conf), 256 tokens, the
batch size `transfer_analysis.sh` chose for the task as a target (TARGET_BSIZE), else as an
intermediate (INTERM_BSIZE)."""

from __future__ import annotations

from pathlib import Path

from stilts_tui.errors import DataError
from stilts_tui.tasks.base import ClsExample, Example, MCExample, Pieces, Task
from stilts_tui.tasks.formats import label_index
from stilts_tui.tasks.loaders import Row, hub_loader, jsonl_loader, label_names, tsv_loader

MAX_LENGTH = 256  # base_roberta.conf: max_seq_len = 256
EPOCHS = 10       # base_roberta.conf: max_epochs = 10; copa / commitbank: 40
_SPLITS = {"train": "train", "dev": "validation"}

# --------------------------------------------------------------------------- row converters


def _bool_label(value: object) -> str:
    return str(bool(value)) if isinstance(value, bool) else str(value)


def _sst2(row: Row, path: Path, line: int) -> Example:
    return ClsExample(row["sentence"], None, label_index(path, line, row["label"], ("0", "1")))


def _qqp(row: Row, path: Path, line: int) -> Example:
    # tasks.py l. 822-826: an empty is_duplicate counts as 0
    label = str(row["is_duplicate"]).strip() or "0"
    return ClsExample(row["question1"], row["question2"], label_index(path, line, label, ("0", "1")))


MNLI_LABELS = ("neutral", "entailment", "contradiction")  # tasks.py l. 1224 (targ_map)


def _mnli(row: Row, path: Path, line: int) -> Example:
    return ClsExample(row["sentence1"], row["sentence2"], label_index(path, line, row["gold_label"], MNLI_LABELS))


SCITAIL_LABELS = ("neutral", "entails")  # tasks.py l. 3452 (targ_map)


def _scitail(row: Row, path: Path, line: int) -> Example:
    return ClsExample(row["premise"], row["hypothesis"], label_index(path, line, row["label"], SCITAIL_LABELS))


def _boolq(row: Row, path: Path, line: int) -> Example:
    # tasks.py l. 3291-3292: the passage is segment A, the question segment B
    return ClsExample(str(row["passage"]), str(row["question"]),
                      label_index(path, line, _bool_label(row["label"]), ("False", "True")))


CB_LABELS = ("neutral", "entailment", "contradiction")  # tasks.py l. 2632 (targ_map)


def _cb(row: Row, path: Path, line: int) -> Example:
    return ClsExample(row["premise"], row["hypothesis"], label_index(path, line, row["label"], CB_LABELS))


COPA_QUESTIONS = {"cause": "What was the cause of this?", "effect": "What happened as a result?"}  # tasks.py l. 2946-2950


def _copa(row: Row, path: Path, line: int) -> Example:
    # tasks.py l. 2987-2990: A = premise, B = the question's words followed by the choice's
    question = COPA_QUESTIONS.get(str(row["question"]))
    if question is None:
        raise DataError(path, f"COPA question must be 'cause' or 'effect', found {row['question']!r}", line=line)
    choices = tuple((str(row["premise"]), Pieces(question, str(row[c]))) for c in ("choice1", "choice2"))
    return MCExample(choices, label_index(path, line, row["label"], ("0", "1")))


CSQA_KEYS = ("A", "B", "C", "D", "E")  # qa.py l. 866 (label2choice_idx)


def _commonsenseqa(row: Row, path: Path, line: int) -> Example:
    # qa.py l. 876-882: A = "Q:" + stem, B = "A:" + the choice's text, in the order A-E
    question = row["question"]
    if not isinstance(question, dict) or "stem" not in question or not isinstance(question.get("choices"), list):
        raise DataError(path, "field 'question' must hold 'stem' and a list of 'choices'", line=line)
    texts = {str(c.get("label")): str(c.get("text")) for c in question["choices"] if isinstance(c, dict)}
    if set(texts) != set(CSQA_KEYS):
        raise DataError(path, f"CommonsenseQA choices must be labelled A-E, found {sorted(texts)}", line=line)
    a = "Q:" + str(question["stem"])
    return MCExample(tuple((a, "A:" + texts[k]) for k in CSQA_KEYS), label_index(path, line, row["answerKey"], CSQA_KEYS))


# --------------------------------------------------------------------------- hub rows in the release's shape


def _csqa_hub(r: Row) -> Row:
    choices = [{"label": k, "text": t} for k, t in zip(r["choices"]["label"], r["choices"]["text"], strict=True)]
    return {"question": {"stem": r["question"], "choices": choices}, "answerKey": r["answerKey"]}


# --------------------------------------------------------------------------- the tasks


def _superglue(name: str, fields: list[str], convert, dir_names: tuple[str, ...], hub_labels: tuple[str, ...]):
    """A SuperGLUE task's loaders: its jsonl release, or the hub (labels as indices in `hub_labels` order)."""
    files = {"train": ["train.jsonl"], "dev": ["val.jsonl", "dev.jsonl"]}
    return {"dir_names": dir_names, "load_split": jsonl_loader(files, fields, convert),
            "load_hub": hub_loader("aps/super_glue", name, _SPLITS, convert, label_names(hub_labels)),
            "hub_name": f"aps/super_glue:{name}"}


TRANSFER_TASKS: tuple[Task, ...] = (
    Task(
        name="sst2", train_rows=67349, description="SST-2 sentiment (GLUE); 2-way", head="classification",
        labels=("0", "1"), metric="accuracy", epochs=EPOCHS, max_length=MAX_LENGTH, batch_size=64,
        dir_names=("SST-2", "sst2", "SST2"),
        load_split=tsv_loader({"train": ["train.tsv"], "dev": ["dev.tsv"]}, ["sentence", "label"], True, _sst2,
                              non_empty=["sentence"]),
        load_hub=hub_loader("nyu-mll/glue", "sst2", _SPLITS, _sst2, label_names(("0", "1"))),
        hub_name="nyu-mll/glue:sst2",
    ),
    Task(
        name="qqp", train_rows=363846, description="Quora Question Pairs (GLUE); 2-way, (accuracy + F1) / 2",
        head="classification", labels=("0", "1"), metric="acc_f1", epochs=EPOCHS, max_length=MAX_LENGTH, batch_size=8,
        dir_names=("QQP", "qqp"),
        load_split=tsv_loader({"train": ["train.tsv"], "dev": ["dev.tsv"]}, ["question1", "question2", "is_duplicate"],
                              True, _qqp, non_empty=["question1", "question2"]),
        load_hub=hub_loader("nyu-mll/glue", "qqp", _SPLITS, _qqp, lambda r: r | {"is_duplicate": str(r["label"])}),
        hub_name="nyu-mll/glue:qqp",
    ),
    Task(
        name="mnli", train_rows=392702, description="MultiNLI (GLUE); 3-way, dev = matched + mismatched as jiant scores it",
        head="classification", labels=MNLI_LABELS, metric="accuracy", epochs=EPOCHS, max_length=MAX_LENGTH, batch_size=4,
        dir_names=("MNLI", "mnli", "multinli_1.0"),
        load_split=tsv_loader({"train": ["train.tsv"], "dev": ["dev_matched.tsv"]}, ["sentence1", "sentence2", "gold_label"],
                              True, _mnli, parts={"dev": [["dev_matched.tsv"], ["dev_mismatched.tsv"]]},
                              non_empty=["sentence1", "sentence2"]),
        load_hub=hub_loader("nyu-mll/glue", "mnli", {"train": "train", "dev": ("validation_matched", "validation_mismatched")},
                            _mnli, lambda r: {"sentence1": r["premise"], "sentence2": r["hypothesis"],
                                              "gold_label": ("entailment", "neutral", "contradiction")[int(r["label"])]}),
        hub_name="nyu-mll/glue:mnli",
    ),
    Task(
        name="scitail", train_rows=23596, description="SciTail science entailment; 2-way", head="classification",
        labels=SCITAIL_LABELS, metric="accuracy", epochs=EPOCHS, max_length=MAX_LENGTH, batch_size=4,
        dir_names=("SciTailV1.1/tsv_format", "SciTailV1.1", "scitail", "SciTail"),
        load_split=tsv_loader({"train": ["scitail_1.0_train.tsv", "tsv_format/scitail_1.0_train.tsv"],
                               "dev": ["scitail_1.0_dev.tsv", "tsv_format/scitail_1.0_dev.tsv"]},
                              ["premise", "hypothesis", "label"], False, _scitail, non_empty=["premise", "hypothesis"]),
        load_hub=hub_loader("allenai/scitail", "tsv_format", _SPLITS, _scitail), hub_name="allenai/scitail:tsv_format",
    ),
    Task(
        name="boolq", train_rows=9427, description="BoolQ yes/no questions (SuperGLUE); 2-way, (accuracy + F1) / 2",
        head="classification", labels=("False", "True"), metric="acc_f1", epochs=EPOCHS, max_length=MAX_LENGTH,
        batch_size=4, **_superglue("boolq", ["question", "passage", "label"], _boolq, ("BoolQ", "boolq"), ("False", "True")),
    ),
    Task(
        name="cb", train_rows=250, description="CommitmentBank (SuperGLUE); 3-way, macro-F1", head="classification",
        labels=CB_LABELS, metric="macro_f1", epochs=40, max_length=MAX_LENGTH, batch_size=4,
        **_superglue("cb", ["premise", "hypothesis", "label"], _cb, ("CB", "cb", "commitbank"),
                     ("entailment", "contradiction", "neutral")),
    ),
    Task(
        name="copa", train_rows=400, description="COPA causal reasoning (SuperGLUE); 2-way multiple choice",
        head="multiple_choice", num_choices=2, metric="accuracy", epochs=40, max_length=MAX_LENGTH, batch_size=32,
        **_superglue("copa", ["premise", "choice1", "choice2", "question", "label"], _copa, ("COPA", "copa"), ("0", "1")),
    ),
    Task(
        name="commonsenseqa", train_rows=9741, description="CommonsenseQA; 5-way multiple choice", head="multiple_choice",
        num_choices=5, metric="accuracy", epochs=EPOCHS, max_length=MAX_LENGTH, batch_size=4,
        dir_names=("CommonsenseQA", "commonsenseqa", "csqa"),
        load_split=jsonl_loader({"train": ["train_rand_split.jsonl"], "dev": ["dev_rand_split.jsonl"]},
                                ["question", "answerKey"], _commonsenseqa),
        load_hub=hub_loader("tau/commonsense_qa", None, _SPLITS, _commonsenseqa, _csqa_hub), hub_name="tau/commonsense_qa",
    ),
)
