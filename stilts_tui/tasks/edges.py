"""The second study's word-level probes: the ten edge-probing tasks (jiant's JSON format) and CCG
supertagging. Five edge-probing sets come from OntoNotes, SPR1 from the Penn Treebank and CCG
from CCGbank: licensed corpora, read from local files only; without them the error names the
source and the layout jiant's preparation scripts produce.

Edge probing (jiant/tasks/edge_probing.py, taskmaster_v1): one JSON record per line, ``text``
space-tokenised, ``targets`` with ``span1`` (and ``span2``) as [start, end) word indices and a
``label`` (a string or a list: multi-label); ``labels.txt`` lists the label set. Records without
targets are skipped (l. 108-120). Head: ``edges-tmpl`` of defaults.conf (projection and MLP of
256, classifier dropout 0.3, sigmoid loss)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stilts_tui.errors import DataError, StiltsError
from stilts_tui.tasks.base import Example, SpanExample, SpanTarget, TaggingExample, Task
from stilts_tui.tasks.formats import _open_lines, read_jsonl, read_label_set, read_tsv

MAX_LENGTH = 256
EPOCHS = 10


def _licensed(task_name: str, corpus: str | None, folder: Path, files: Sequence[str], release: str) -> StiltsError:
    layout = f"{release}/{{{','.join(files)}}} under the data folder; looked in {folder}"
    if corpus:
        return StiltsError(f"{task_name} is built from {corpus}, which is licensed and cannot be downloaded; "
                           f"its files are not here (expected {layout})",
                           f"get {corpus} from the LDC and build the files with jiant's probing data scripts, "
                           "then pass --data-dir DIR")
    return StiltsError(f"the files of {task_name} are not here (expected {layout})",
                       "download the edge-probing data with jiant's probing data scripts, then pass --data-dir DIR")


def _records(path: Path) -> list[tuple[int, dict]]:
    rows = read_jsonl(path, ["text"])
    for r in rows:
        if not isinstance(r["text"], str):
            raise DataError(path, "field 'text' must be a string", line=r["_line"])
    return [(r["_line"], r) for r in rows]


def _span(path: Path, line: int, value: object, n_words: int) -> tuple[int, int]:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)
            and 0 <= value[0] < value[1] <= n_words):
        raise DataError(path, f"span {value!r} is not [start, end) within the text's {n_words} words", line=line)
    return value[0], value[1]


def edge_loader(task_name: str, release: str, files: dict[str, str], two_sided: bool, corpus: str | None):
    def load(folder: Path, split: str) -> list[Example]:
        path, labels_path = folder / files[split], folder / "labels.txt"
        if not path.exists() or not labels_path.exists():  # something else there: the readers say what
            raise _licensed(task_name, corpus, folder, [files["train"], files["dev"], "labels.txt"], release)
        labels = read_label_set(labels_path)
        index = {name: i for i, name in enumerate(labels)}
        out: list[Example] = []
        for line, record in _records(path):
            words = tuple(record["text"].split())
            targets = []
            for t in record.get("targets") or []:
                names = t["label"] if isinstance(t.get("label"), list) else [t.get("label")]
                unknown = [n for n in names if n not in index]
                if unknown:
                    raise DataError(path, f"label {unknown[0]!r} is not in labels.txt", line=line)
                span2 = _span(path, line, t.get("span2"), len(words)) if two_sided else None
                targets.append(SpanTarget(_span(path, line, t.get("span1"), len(words)), span2,
                                          tuple(sorted(index[n] for n in names))))
            if targets:
                out.append(SpanExample(words, tuple(targets)))
        return out

    return load


_ONTONOTES = "OntoNotes 5.0 (LDC2013T19)"
_ONTONOTES_FILES = {"train": "train.json", "dev": "development.json"}

# name, jiant name (edge_probing.py l. 255-345), folder, files, two-sided, licensed corpus, batch (PROBING_BSIZE)
_EDGE_TASKS = (
    ("edges_pos", "edges-pos-ontonotes", "edges/ontonotes/const/pos", _ONTONOTES_FILES, False, _ONTONOTES, 8,
     "part of speech of a word (OntoNotes)"),
    ("edges_nonterminal", "edges-nonterminal-ontonotes", "edges/ontonotes/const/nonterminal", _ONTONOTES_FILES, False,
     _ONTONOTES, 8, "constituent label of a span (OntoNotes)"),
    ("edges_ner", "edges-ner-ontonotes", "edges/ontonotes/ner", _ONTONOTES_FILES, False, _ONTONOTES, 8,
     "named-entity type of a span (OntoNotes)"),
    ("edges_srl", "edges-srl-ontonotes", "edges/ontonotes/srl", _ONTONOTES_FILES, True, _ONTONOTES, 8,
     "semantic role of an argument for a predicate (OntoNotes)"),
    ("edges_coref", "edges-coref-ontonotes", "edges/ontonotes/coref", _ONTONOTES_FILES, True, _ONTONOTES, 8,
     "do two mentions corefer (OntoNotes)"),
    ("edges_spr1", "edges-spr1", "edges/spr1", {"train": "spr1.train.json", "dev": "spr1.dev.json"}, True,
     "the Penn Treebank (LDC99T42), which SPR1 annotates", 32, "semantic proto-role properties (SPR1, multi-label)"),
    ("edges_spr2", "edges-spr2", "edges/spr2", {"train": "edges.train.json", "dev": "edges.dev.json"}, True, None, 4,
     "semantic proto-role properties (SPR2, multi-label)"),
    ("edges_dpr", "edges-dpr", "edges/dpr", {"train": "train.json", "dev": "dev.json"}, True, None, 4,
     "definite pronoun resolution (DPR)"),
    ("edges_rel_semeval", "edges-rel-semeval", "edges/semeval", {"train": "train.0.85.json", "dev": "dev.json"}, True,
     None, 4, "relation between two nominals (SemEval 2010 task 8)"),
    ("edges_dep", "edges-dep-ud-ewt", "edges/dep_ewt", {"train": "en_ewt-ud-train.json", "dev": "en_ewt-ud-dev.json"},
     True, None, 4, "dependency label between two words (UD English Web Treebank)"),
)


def _edge_task(name, jiant, folder, files, two_sided, corpus, batch, what) -> Task:
    return Task(
        name=name, description=f"edge probing: {what}; binary F1 over (target, label) decisions", head="span_classification",
        metric="micro_f1", epochs=EPOCHS, max_length=MAX_LENGTH, batch_size=batch, num_spans=2 if two_sided else 1,
        span_proj_dim=256, span_mlp=True, span_dropout=0.3, multi_label=True,
        dir_names=(folder, folder.rsplit("/", 1)[-1], jiant), load_split=edge_loader(name, folder, files, two_sided, corpus),
        licensed=corpus, labels_file="labels.txt",
        data_fix=f"pass --data-dir DIR holding {folder}/{{{files['train']},{files['dev']},labels.txt}}"
        + (f" (built from {corpus}, licensed: local files only)" if corpus else ""),
    )


def _ccg(folder: Path, split: str) -> list[Example]:
    """jiant's CCG files (tasks.py CCGTaggingTask): a header row, then index, the sentence's words
    and their supertags, tab-separated (load_tsv with s1_idx=1, label_idx=2, skip_rows=1)."""
    name = {"train": "ccg.train", "dev": "ccg.dev"}[split]
    path = next((folder / n for n in (name, f"{name}.tsv") if (folder / n).is_file()), None)
    if path is None:
        raise _licensed("ccg", "CCGbank (LDC2005T13)", folder, ["ccg.train", "ccg.dev"], "CCG")
    tags_path = folder / "tags.txt"
    rows = read_tsv(path, ["idx", "sentence", "tags"], header=False)[1:]
    vocab = [x.strip() for _, x in _open_lines(tags_path) if x.strip()] if tags_path.is_file() else None
    out: list[Example] = []
    for r in rows:
        words, tags = r["sentence"].split(" "), r["tags"].split(" ")
        if len(words) != len(tags):
            raise DataError(path, f"{len(words)} words but {len(tags)} tags", line=int(r["_line"]))
        out.append(TaggingExample(tuple(words), tuple(_tag_index(path, int(r["_line"]), t, vocab) for t in tags)))
    return out


CCG_TAGS = 1363  # tasks.py CCGTaggingTask: "There are 1363 supertags in CCGBank"


def _tag_index(path: Path, line: int, tag: str, vocab: list[str] | None) -> int:
    if vocab is None:  # jiant's files carry tag indices
        if not tag.isdigit() or int(tag) >= CCG_TAGS:
            raise DataError(path, f"tag {tag!r} is not an index below {CCG_TAGS}", line=line,
                            fix="add tags.txt (one supertag per line) when the file holds tag names")
        return int(tag)
    if tag not in vocab:
        raise DataError(path, f"tag {tag!r} is not in tags.txt", line=line)
    return vocab.index(tag)


EDGE_TASKS: tuple[Task, ...] = tuple(_edge_task(*row) for row in _EDGE_TASKS) + (
    Task(name="ccg", description="CCG supertagging (CCGbank); accuracy over words", head="tagging",
         metric="token_accuracy", epochs=EPOCHS, max_length=MAX_LENGTH, batch_size=4, num_classes=CCG_TAGS,
         dir_names=("CCG", "ccg"), load_split=_ccg, licensed="CCGbank (LDC2005T13)",
         data_fix="pass --data-dir DIR holding CCG/ccg.train and CCG/ccg.dev (built from CCGbank, licensed: local files only)"),
)
