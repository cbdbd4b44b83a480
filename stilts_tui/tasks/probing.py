"""The second study's sentence-level probes: ten SentEval probing tasks (Conneau et al. 2018) and
four function-word acceptability tasks (Kim et al. 2019), as jiant's taskmaster_v1 branch defines
them (jiant/tasks/senteval_probing.py, jiant/tasks/acceptablity_probing.py). CoLA, the fifth
acceptability probe, is the built-in `cola`.

SentEval files are read in their official release format, one file per task holding every split:
`tr|va|te <TAB> label <TAB> sentence` (SentEval's data/probing/*.txt). jiant read CSV copies of them
with the same label and sentence columns; its head sizes are kept (7 outputs for sentence length,
8 for tree depth with labels shifted by 5, 20 for top constituents, 1000 for word content)."""

from __future__ import annotations

from pathlib import Path

from stilts_tui.errors import DataError
from stilts_tui.tasks.base import ClsExample, Example, Task
from stilts_tui.tasks.formats import find_file, label_index, read_tsv
from stilts_tui.tasks.loaders import Row, convert_rows, tsv_loader

MAX_LENGTH = 256
EPOCHS = 10
SENTEVAL_SPLITS = {"train": "tr", "dev": "va"}
SENTEVAL_DIRS = ("probing", "senteval", "SentEval/data/probing", "data/probing")


def _senteval_loader(file: str, labels: tuple[str, ...], open_classes: int = 0):
    """Rows of one split from a SentEval probing file. With `open_classes` the label set is the
    sorted labels of the training rows (word content's 1000 words, top constituents' 20 shapes)."""

    def load(folder: Path, split: str) -> list[Example]:
        path = find_file(folder, [file])
        rows = read_tsv(path, ["split", "label", "sentence"], header=False)
        names = labels
        if open_classes:
            names = tuple(sorted({r["label"] for r in rows if r["split"] == "tr"}))
            if len(names) > open_classes:
                raise DataError(path, f"{len(names)} training labels, but the study's head has {open_classes} outputs")
        wanted = [r for r in rows if r["split"] == SENTEVAL_SPLITS[split] and r["sentence"]]
        if not wanted:
            raise DataError(path, f"no rows of split {SENTEVAL_SPLITS[split]!r}",
                            fix="use the SentEval probing file itself (split, label and sentence per line)")

        def convert(row: Row, p: Path, line: int) -> Example:
            return ClsExample(row["sentence"], None, label_index(p, line, row["label"], names))

        return convert_rows(wanted, path, convert)

    return load


def _senteval(name: str, title: str, labels: tuple[str, ...], batch: int = 64, open_classes: int = 0,
              rows: int = 100000) -> Task:
    return Task(
        name=f"se_{name}", train_rows=rows, description=f"SentEval probe: {title}", head="classification",
        labels=labels, num_classes=open_classes, metric="accuracy", epochs=EPOCHS, max_length=MAX_LENGTH,
        batch_size=batch, dir_names=SENTEVAL_DIRS, load_split=_senteval_loader(f"{name}.txt", labels, open_classes),
        data_fix="download SentEval's probing data (github.com/facebookresearch/SentEval, data/probing) and "
                 "pass its folder with --data-dir",
    )


# Label sets and head sizes: senteval_probing.py l. 27/36, 68/77, 118/127, 168/177, 218/227, 268,
# 321/330/341, 363, 416/425, 468/477; batch 64 for every SentEval probe (transfer_analysis.sh PROBING_BSIZE).
SENTEVAL_TASKS: tuple[Task, ...] = (
    # 7 outputs, labels 0-5: the seventh never occurs (jiant's n_classes = 7)
    _senteval("sentence_length", "sentence length bin (6 bins)", tuple(str(i) for i in range(7))),
    _senteval("word_content", "which of 1,000 mid-frequency words occurs", (), open_classes=1000),
    # tree depths 5-12 as labels 0-7 (senteval_probing.py l. 340-341: label - 5)
    _senteval("tree_depth", "depth of the parse tree (5-12)", tuple(str(i) for i in range(5, 13))),
    _senteval("top_constituents", "sequence of top constituents (20 classes)", (), open_classes=20),
    _senteval("bigram_shift", "two adjacent words inverted or not", ("I", "O")),
    _senteval("past_present", "tense of the main verb", ("PAST", "PRES")),
    _senteval("subj_number", "number of the main clause's subject", ("NN", "NNS")),
    _senteval("obj_number", "number of the direct object", ("NN", "NNS")),
    _senteval("odd_man_out", "a noun or verb replaced by a random one", ("C", "O")),
    _senteval("coordination_inversion", "two coordinated clauses inverted or not", ("O", "I")),
)

# acceptablity_probing.py l. 11-14 (folders), l. 42-48 (sentence column 1, label column 2, fold 1),
# l. 77-79 (score: (accuracy + F1) / 2); batch 4 (PROBING_BSIZE)
ACCEPTABILITY_LABELS = ("unacceptable", "acceptable")


def _acceptability(name: str, folder: str, title: str, rows: int) -> Task:
    files = {"train": [f"{folder}/fold1/train.tsv", "fold1/train.tsv", "train.tsv"],
             "dev": [f"{folder}/fold1/dev.tsv", "fold1/dev.tsv", "dev.tsv"]}

    def convert(row: Row, path: Path, line: int) -> Example:
        return ClsExample(row["sentence"], None, label_index(path, line, row["label"], ACCEPTABILITY_LABELS))

    return Task(
        name=f"acceptability_{name}", train_rows=rows, description=f"function-word acceptability probe: {title}",
        head="classification", labels=ACCEPTABILITY_LABELS, metric="acc_f1", epochs=EPOCHS, max_length=MAX_LENGTH,
        batch_size=4, dir_names=("FunctionWordsProbing", folder),
        load_split=tsv_loader(files, ["id", "sentence", "label"], False, convert, non_empty=["sentence"]),
        data_fix="the function-word probing sets (Kim et al. 2019, 'Probing what different NLP tasks teach machines "
                 "about function word comprehension') go in FunctionWordsProbing/<task>/fold1/{train,dev}.tsv",
    )


# train_rows: fold 1's training size as base_roberta.conf implies it (the per-task val_interval of
# 416 / 101 / 91 / 95 steps is one epoch at batch 4); used only to order and estimate runs.
ACCEPTABILITY_TASKS: tuple[Task, ...] = (
    _acceptability("wh", "whwords", "wh-words", 1664),
    _acceptability("def", "definiteness", "definiteness", 404),
    _acceptability("conj", "coordinating-conjunctions", "coordinating conjunctions", 364),
    _acceptability("eos", "eos", "end of sentence", 380),
)

PROBING_TASKS = SENTEVAL_TASKS + ACCEPTABILITY_TASKS
