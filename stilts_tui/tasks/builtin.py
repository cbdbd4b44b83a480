"""The tasks of the study, each read from its official release files or from the Hugging Face hub
and mapped to the same examples. Encodings follow the reference code: docs/paper.md ("Segment
strings and truncation") for the first study, docs/pruksachatkun2020.md ("The tasks") for jiant's."""

from __future__ import annotations

from pathlib import Path

from stilts_tui.errors import DataError
from stilts_tui.tasks import hellaswag
from stilts_tui.tasks.base import ClsExample, Example, MCExample, Task
from stilts_tui.tasks.formats import (
    find_file,
    label_index,
    read_csv,
    read_jsonl,
    read_label_lines,
    read_tsv,
)
from stilts_tui.tasks.loaders import (
    Row,
    convert_rows,
    hub_loader,
    jsonl_loader,
    label_names,
    tsv_loader,
)

# --------------------------------------------------------------------------- row converters


def _rte(row: Row, path: Path, line: int) -> Example:
    labels = ("entailment", "not_entailment")
    return ClsExample(row["sentence1"], row["sentence2"], label_index(path, line, row["label"], labels))


def _cola(row: Row, path: Path, line: int) -> Example:
    return ClsExample(row["sentence"], None, label_index(path, line, row["label"], ("0", "1")))


def _wic(row: Row, path: Path, line: int) -> Example:
    label = row["label"]
    if isinstance(label, bool):  # SuperGLUE jsonl carries booleans
        label = "T" if label else "F"
    return ClsExample((row["word"], row["sentence1"]), row["sentence2"], label_index(path, line, label, ("F", "T")))


MEDNLI_LABELS = ("entailment", "contradiction", "neutral")  # utils.py l. 433-434 (MLIProcessor.get_labels)


def _mednli(row: Row, path: Path, line: int) -> Example:
    labels = MEDNLI_LABELS
    return ClsExample(row["sentence1"], row["sentence2"], label_index(path, line, row["gold_label"], labels))


def _mc_label(path: Path, line: int, value: object, k: int, one_based: bool) -> int:
    allowed = [str(i + 1 if one_based else i) for i in range(k)]
    return label_index(path, line, value, allowed)


def _endings(row: Row, path: Path, line: int, key: str, k: int) -> list[str]:
    endings = row[key]
    if not isinstance(endings, list) or len(endings) != k:
        raise DataError(path, f"field {key!r} must be a list of {k} strings", line=line)
    return [str(e) for e in endings]


def _hellaswag(row: Row, path: Path, line: int) -> Example:
    # utils.py l. 495-497: A = ctx_a, B = ctx_b + " " + ending, neither stripped (an empty ctx_b
    # leaves B with a leading space, which byte-level BPE encodes).
    endings = _endings(row, path, line, "endings", 4)
    choices = tuple((str(row["ctx_a"]), str(row["ctx_b"]) + " " + e) for e in endings)
    return MCExample(choices, _mc_label(path, line, row["label"], 4, one_based=False))


def _hellaswag_p(row: Row, path: Path, line: int) -> Example:
    # Premise and ctx_b removed: the model sees each ending alone.
    endings = _endings(row, path, line, "endings", 4)
    return MCExample(tuple((e, None) for e in endings), _mc_label(path, line, row["label"], 4, one_based=False))


def _synthesis(row: Row, path: Path, line: int) -> Example:
    endings = _endings(row, path, line, "endings", 4)
    return MCExample(tuple((str(row["ctx"]), e) for e in endings), _mc_label(path, line, row["label"], 4, one_based=False))


def _socialiqa(row: Row, path: Path, line: int) -> Example:
    a = (str(row["context"]), str(row["question"]))
    choices = tuple((a, str(row[f"answer{c}"])) for c in "ABC")
    return MCExample(choices, _mc_label(path, line, row["label"], 3, one_based=True))


def winogrande_split(sentence: str, option: str, path: Path, line: int) -> tuple[str, str]:
    """(A, B) for one WinoGrande option, as the reference builds them (utils.py l. 221-227, from
    the WinoGrande authors' RoBERTa code): A is the sentence up to the blank, unstripped; B is
    ``"_ " + rest.strip()`` with the blank replaced by the option."""
    if sentence.count("_") != 1:
        found = "no blank" if "_" not in sentence else "more than one '_'"
        raise DataError(path, f"WinoGrande sentence has {found}; expected exactly one '_'", line=line)
    idx = sentence.index("_")
    option_str = "_ " + sentence[idx + 1 :].strip()
    return sentence[:idx], option_str.replace("_", option)


def _winogrande(row: Row, path: Path, line: int) -> Example:
    choices = tuple(winogrande_split(str(row["sentence"]), str(row[o]), path, line) for o in ("option1", "option2"))
    return MCExample(choices, _mc_label(path, line, row["answer"], 2, one_based=True))


def _cosmosqa(row: Row, path: Path, line: int) -> Example:
    a = (str(row["context"]), str(row["question"]))
    return MCExample(tuple((a, str(row[f"answer{i}"])) for i in range(4)), _mc_label(path, line, row["label"], 4, one_based=False))


# --------------------------------------------------------------------------- file layouts


_RTE_GLUE = tsv_loader({"train": ["train.tsv"], "dev": ["dev.tsv"]}, ["sentence1", "sentence2", "label"], True, _rte)
_RTE_SUPERGLUE = jsonl_loader({"train": ["train.jsonl"], "dev": ["val.jsonl"]}, ["premise", "hypothesis", "label"],
                              lambda r, p, n: _rte(r | {"sentence1": r["premise"], "sentence2": r["hypothesis"]}, p, n))


def _rte_loader(folder: Path, split: str) -> list[Example]:
    """GLUE's tsv, or SuperGLUE's jsonl (the second study's rte-superglue, jiant tasks.py l. 1875):
    the same examples in two releases."""
    if not (folder / "train.tsv").is_file() and (folder / "train.jsonl").is_file():
        return _RTE_SUPERGLUE(folder, split)
    return _RTE_GLUE(folder, split)


def _wic_loader(folder: Path, split: str) -> list[Example]:
    # The original WiC release: tab-separated data file plus a gold file of T/F lines.
    # SuperGLUE's jsonl re-release is read too.
    n = split
    path = find_file(folder, [f"{n}/{n}.data.txt", f"{n}.data.txt", f"{n}.jsonl"] + (["val.jsonl"] if split == "dev" else []))
    if path.suffix == ".jsonl":
        return convert_rows(read_jsonl(path, ["word", "sentence1", "sentence2", "label"]), path, _wic)
    rows = read_tsv(path, ["word", "pos", "indices", "sentence1", "sentence2"], header=False)
    gold = find_file(folder, [f"{n}/{n}.gold.txt", f"{n}.gold.txt"])
    for r, lab in zip(rows, read_label_lines(gold, len(rows)), strict=True):
        r["label"] = lab
    return convert_rows(rows, path, _wic)


def _cosmosqa_loader(folder: Path, split: str) -> list[Example]:
    fields = ["context", "question", "answer0", "answer1", "answer2", "answer3", "label"]
    name = {"train": "train", "dev": "valid"}[split]
    path = find_file(folder, [f"{name}.csv", f"{name}.jsonl"])
    rows = read_csv(path, fields) if path.suffix == ".csv" else read_jsonl(path, fields)
    return convert_rows(rows, path, _cosmosqa)


_GLUE_SPLITS = {"train": "train", "dev": "validation"}


# --------------------------------------------------------------------------- the registry

_HS_FILES, _HS_FIELDS, _BUILT = hellaswag.FILES, hellaswag.FIELDS, hellaswag.BUILT


def _hellaswag_derived(kind: str, fallback_to_hellaswag: bool):
    """HellaSwag-p / Hella-sh read the files `stilts build-data` wrote; HellaSwag-p can also read
    the HellaSwag release directly, since its encoding ignores the premise anyway."""
    built = jsonl_loader(_BUILT, _HS_FIELDS, _hellaswag_p if kind == "p" else _hellaswag)
    original = jsonl_loader(_HS_FILES, _HS_FIELDS, _hellaswag_p)

    def load(folder: Path, split: str) -> list[Example]:
        try:
            return built(folder, split)
        except DataError as exc:
            if not fallback_to_hellaswag or "file not found" not in exc.problem:
                if "file not found" in exc.problem:
                    builder = "hellaswag-p" if kind == "p" else "hella-sh"
                    raise exc.with_fix(f"build it first: stilts build-data {builder} --hellaswag-dir HELLASWAG_DIR "
                                       f"--out {folder}") from None
                raise
            return original(folder, split)

    return load


def _winogrande_task(size: str) -> Task:
    epochs = {"xs": 10, "s": 10, "m": 5, "l": 4, "xl": 4}[size]
    rows = {"xs": 160, "s": 640, "m": 2558, "l": 10234, "xl": 40398}[size]
    files = {"train": [f"train_{size}.jsonl"], "dev": ["dev.jsonl"]}
    labels = {"train": [f"train_{size}-labels.lst"], "dev": ["dev-labels.lst"]}
    return Task(
        name=f"winogrande_{size}", train_rows=rows, description=f"WinoGrande ({size.upper()} training set); 2-way pronoun resolution",
        head="multiple_choice", num_choices=2, metric="accuracy", epochs=epochs, max_length=50,
        dir_names=("winogrande_1.1", "winogrande", "WinoGrande"),
        load_split=jsonl_loader(files, ["sentence", "option1", "option2", "answer"], _winogrande, labels, "answer"),
        load_hub=hub_loader("allenai/winogrande", f"winogrande_{size}", _GLUE_SPLITS, _winogrande),
        hub_name=f"allenai/winogrande:winogrande_{size}",
    )


BUILTIN_TASKS: tuple[Task, ...] = (
    Task(
        name="rte", train_rows=2490, description="Recognising Textual Entailment (GLUE); 2-way", head="classification",
        labels=("entailment", "not_entailment"), metric="accuracy", epochs=5, max_length=100,
        dir_names=("RTE", "rte"),
        load_split=_rte_loader,
        load_hub=hub_loader("nyu-mll/glue", "rte", _GLUE_SPLITS, _rte, label_names(("entailment", "not_entailment"))), hub_name="nyu-mll/glue:rte",
    ),
    Task(
        name="cola", train_rows=8551, description="Corpus of Linguistic Acceptability (GLUE); Matthews correlation", head="classification",
        labels=("0", "1"), metric="mcc", epochs=5, max_length=50, dir_names=("CoLA", "cola", "cola_public"),
        load_split=tsv_loader(
            {"train": ["train.tsv", "in_domain_train.tsv", "raw/in_domain_train.tsv"],
             "dev": ["dev.tsv", "in_domain_dev.tsv", "raw/in_domain_dev.tsv"]},
            ["source", "label", "judgment", "sentence"], False, _cola),
        load_hub=hub_loader("nyu-mll/glue", "cola", _GLUE_SPLITS, _cola, label_names(("0", "1"))),
        hub_name="nyu-mll/glue:cola",
    ),
    Task(
        name="wic", train_rows=5428, description="Word-in-Context (SuperGLUE); 2-way", head="classification", labels=("F", "T"),
        metric="accuracy", epochs=5, max_length=70, dir_names=("WiC", "WiC_dataset", "wic"), load_split=_wic_loader,
        load_hub=hub_loader("aps/super_glue", "wic", _GLUE_SPLITS, _wic, label_names(("F", "T"))), hub_name="aps/super_glue:wic",
    ),
    Task(
        name="mednli", train_rows=11232, description="MedNLI clinical NLI; 3-way (credentialed data: local files only)",
        head="classification", labels=MEDNLI_LABELS, metric="accuracy", epochs=5,
        max_length=80, dir_names=("mednli", "MedNLI", "mednli-a-natural-language-inference-dataset-for-the-clinical-domain-1.0.0"),
        load_split=jsonl_loader({"train": ["mli_train_v1.jsonl", "train.jsonl"], "dev": ["mli_dev_v1.jsonl", "dev.jsonl"]},
                                 ["sentence1", "sentence2", "gold_label"], _mednli),
    ),
    Task(
        name="socialiqa", train_rows=33410, description="Social IQa; 3-way multiple choice", head="multiple_choice", num_choices=3,
        metric="accuracy", epochs=3, max_length=70, dir_names=("socialiqa-train-dev", "socialiqa", "SocialIQA", "siqa"),
        load_split=jsonl_loader({"train": ["train.jsonl"], "dev": ["dev.jsonl"]},
                                 ["context", "question", "answerA", "answerB", "answerC", "label"], _socialiqa,
                                 {"train": ["train-labels.lst"], "dev": ["dev-labels.lst"]}),
        load_hub=hub_loader("allenai/social_i_qa", None, _GLUE_SPLITS, _socialiqa), hub_name="allenai/social_i_qa",
    ),
    *(_winogrande_task(s) for s in ("xs", "s", "m", "l", "xl")),
    Task(
        name="hellaswag", train_rows=39905, description="HellaSwag commonsense sentence completion; 4-way", head="multiple_choice",
        num_choices=4, metric="accuracy", epochs=3, max_length=120, batch_size=8, dir_names=("hellaswag", "HellaSwag"),
        load_split=jsonl_loader(_HS_FILES, _HS_FIELDS, _hellaswag),
        load_hub=hub_loader("Rowan/hellaswag", None, _GLUE_SPLITS, _hellaswag), hub_name="Rowan/hellaswag",
    ),
    Task(
        name="hellaswag_p", train_rows=39905, description="HellaSwag-p: HellaSwag endings alone, premise removed; 4-way",
        head="multiple_choice", num_choices=4, metric="accuracy", epochs=3, max_length=50,
        dir_names=("hellaswag_p", "hellaswag-p", "hellaswag", "HellaSwag"),
        load_split=_hellaswag_derived("p", fallback_to_hellaswag=True),
        load_hub=hub_loader("Rowan/hellaswag", None, _GLUE_SPLITS, _hellaswag_p), hub_name="Rowan/hellaswag",
    ),
    Task(
        name="hella_sh", train_rows=39905, description="Hella-sh: HellaSwag with the words of the three wrong endings shuffled; 4-way",
        head="multiple_choice", num_choices=4, metric="accuracy", epochs=3, max_length=120, batch_size=8,
        dir_names=("hella_sh", "hella-sh"), load_split=_hellaswag_derived("sh", fallback_to_hellaswag=False),
        load_hub=hub_loader("Rowan/hellaswag", None, _GLUE_SPLITS, _hellaswag, hellaswag.shuffle_wrong_endings),
        hub_name="Rowan/hellaswag (shuffled on load)",
    ),
    Task(
        name="synthesis_gpt2", train_rows=30000, description="Synthesis_GPT2: Wikipedia sentence halves vs GPT-2 continuations; 4-way",
        head="multiple_choice", num_choices=4, metric="accuracy", epochs=2, max_length=60,
        dir_names=("synthesis_gpt2", "synthesis-gpt2", "Synthesis_GPT2"),
        load_split=jsonl_loader(_BUILT, ["ctx", "endings", "label"], _synthesis),
    ),
    Task(
        name="cosmosqa", train_rows=25262, description="Cosmos QA reading comprehension; 4-way multiple choice", head="multiple_choice",
        num_choices=4, metric="accuracy", epochs=3, max_length=150, dir_names=("cosmosqa", "CosmosQA", "cosmos_qa"),
        load_split=_cosmosqa_loader,
        load_hub=hub_loader("allenai/cosmos_qa", None, _GLUE_SPLITS, _cosmosqa), hub_name="allenai/cosmos_qa",
    ),
)

