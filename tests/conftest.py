"""Shared fixtures: official-format data files written in their exact schemas, and tiny
tokenizers/models built offline."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Under pytest-xdist (`make test`), the test processes share the cores: torch in each takes its
# share, not all of them (set before any test imports torch; runs started as subprocesses get
# their own count from their slot).
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    from stilts_tui.runner.slots import cpu_count  # imports no torch

    _share = max(1, cpu_count() // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, str(_share))

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ waiting for an observed event
# Tests wait for what they mean (a file, an event, a screen text), never for a fixed time.


@contextlib.contextmanager
def as_runner(db: Path) -> Iterator[None]:
    """This test process stands in for `db`'s runner: it holds the store's writer lock, which is
    what proves a process is a results file's runner (runner/identity.py), not the pid alone."""
    from filelock import FileLock

    lock = FileLock(str(db) + ".lock")
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def wait_for(pred: Callable[[], Any], timeout: float = 120, what: str = "condition", every: float = 0.2) -> Any:
    """Poll `pred` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


async def until(pilot, pred: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """wait_for inside a Textual Pilot session: the app keeps running while we wait."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        await pilot.pause(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
SHARED_DATA = REPO.parent / "shared" / "data"

CORPUS = [
    "the cat sat on the mat and the dog slept by the fire .",
    "a man is playing a guitar on the stage while people dance .",
    "the committee approved the budget after a long debate .",
    "she went to the market to buy apples , bread and milk .",
    "he said the weather would be fine , but it rained all day .",
    "the bank of the river was muddy after the storm .",
    "the children ran across the park to catch the bus .",
]


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_official_fixtures(root: Path) -> Path:
    """One small folder per task, each in its official release layout and schema."""
    rte = root / "RTE"
    rte.mkdir(parents=True)
    for split in ("train", "dev"):
        (rte / f"{split}.tsv").write_text(
            "index\tsentence1\tsentence2\tlabel\n"
            '0\tThe cat sat on the mat.\tA cat is on a mat.\tentailment\n'
            '1\tThe dog slept by the fire.\tThe "dog" ran away.\tnot_entailment\n'
            '2\tA man plays a guitar.\tA man plays music.\tentailment\n', encoding="utf-8")
    cola = root / "CoLA" / "raw"
    cola.mkdir(parents=True)
    for split in ("train", "dev"):
        (cola / f"in_domain_{split}.tsv").write_text(
            "gj04\t1\t\tThe cat sat on the mat.\n"
            "gj04\t0\t*\tCat the mat on sat.\n"
            "clc95\t1\t\tShe went to the market.\n", encoding="utf-8")
    wic = root / "WiC_dataset"
    for split in ("train", "dev"):
        (wic / split).mkdir(parents=True)
        (wic / split / f"{split}.data.txt").write_text(
            "bank\tN\t3-1\tthe bank of the river .\tthe bank approved the budget .\n"
            "run\tV\t2-1\tthe children run .\tthey run to the bus .\n", encoding="utf-8")
        (wic / split / f"{split}.gold.txt").write_text("F\nT\n", encoding="utf-8")
    med = root / "mednli"
    for split in ("train", "dev"):
        _jsonl(med / f"mli_{split}_v1.jsonl", [
            {"sentence1": "The patient has a fever.", "pairID": "1", "sentence2": "The patient is febrile.", "gold_label": "entailment"},
            {"sentence1": "No acute distress.", "pairID": "2", "sentence2": "The patient is in pain.", "gold_label": "contradiction"},
            {"sentence1": "Blood pressure stable.", "pairID": "3", "sentence2": "The patient is old.", "gold_label": "neutral"},
        ])
    siqa = root / "socialiqa-train-dev"
    for split in ("train", "dev"):
        _jsonl(siqa / f"{split}.jsonl", [
            {"context": "Tracy went to the market.", "question": "Why did Tracy do this?", "answerA": "to buy bread",
             "answerB": "to sleep", "answerC": "to swim"},
            {"context": "Jan ran to the bus.", "question": "What will Jan want to do next?", "answerA": "sit",
             "answerB": "cook", "answerC": "dance"},
        ])
        (siqa / f"{split}-labels.lst").write_text("1\n3\n", encoding="utf-8")
    wg = root / "winogrande_1.1"
    rows = [
        {"qID": "a", "sentence": "The trophy does not fit in the suitcase because the _ is too big.", "option1": "trophy",
         "option2": "suitcase", "answer": "1"},
        {"qID": "b", "sentence": "Mary helped Sue because _ was kind.", "option1": "Mary", "option2": "Sue", "answer": "1"},
        {"qID": "c", "sentence": "The bus passed the car because the _ was fast.", "option1": "bus", "option2": "car", "answer": "2"},
    ]
    for size in ("xs", "s", "m", "l", "xl"):
        _jsonl(wg / f"train_{size}.jsonl", rows)
        (wg / f"train_{size}-labels.lst").write_text("1\n1\n2\n", encoding="utf-8")
    _jsonl(wg / "dev.jsonl", rows)
    (wg / "dev-labels.lst").write_text("1\n1\n2\n", encoding="utf-8")
    hs = root / "hellaswag"
    hs_rows = [
        {"ind": 4, "activity_label": "Removing ice", "ctx_a": "A man is standing on a roof.", "ctx_b": "he",
         "ctx": "A man is standing on a roof. he", "split": "train", "split_type": "indomain", "source_id": "x",
         "endings": ["removes the ice from the roof .", "eats a sandwich in the car .", "runs to the market quickly .",
                     "sings a song to the dog ."], "label": 0},
        {"ind": 5, "activity_label": "Cooking", "ctx_a": "A woman is in a kitchen.", "ctx_b": "",
         "ctx": "A woman is in a kitchen.", "split": "train", "split_type": "indomain", "source_id": "y",
         "endings": ["the dog sleeps by the fire .", "she cooks pasta in a pot .", "the bus passed the car .",
                     "a man plays the guitar ."], "label": 1},
    ]
    _jsonl(hs / "hellaswag_train.jsonl", hs_rows)
    _jsonl(hs / "hellaswag_val.jsonl", hs_rows)
    syn = root / "synthesis_gpt2"
    for split in ("train", "dev"):
        _jsonl(syn / f"{split}.jsonl", [
            {"ctx": "The committee approved the budget", "endings": ["after a long debate .", "the dog slept .",
                                                                      "apples and bread .", "on the mat ."], "label": 0},
        ])
    cos = root / "cosmosqa"
    cos.mkdir(parents=True)
    for name in ("train", "valid"):
        (cos / f"{name}.csv").write_text(
            "id,context,question,answer0,answer1,answer2,answer3,label\n"
            'q1,"It rained, so we stayed in.",Why did we stay in?,It rained.,It was sunny.,We were bored.,None of the above.,0\n',
            encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def official_data(tmp_path_factory) -> Path:
    return write_official_fixtures(tmp_path_factory.mktemp("official"))


@pytest.fixture(scope="session")
def tokenizers(tmp_path_factory) -> dict:
    """A RoBERTa-style (byte-level BPE) and a BERT-style (WordPiece) tokenizer, trained offline."""
    from stilts_tui.models.tiny import build_tokenizer

    root = tmp_path_factory.mktemp("tok")
    return {kind: build_tokenizer(kind, root / kind, CORPUS) for kind in ("roberta", "bert")}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    from stilts_tui.models.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("models")
    return {kind: build_tiny_model(root / kind, kind, CORPUS) for kind in ("roberta", "bert")}


def shared_data_or_skip() -> Path:
    if not (SHARED_DATA / "rte" / "train.tsv").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA} (../shared/data beside the repo); acceptance test skipped")
    return SHARED_DATA


def write_rte_like(folder: Path, n: int, seed: int = 0) -> Path:
    """An RTE-format task folder with ``n`` rows per split built from CORPUS (for training tests)."""
    import random

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev"):
        lines = ["index\tsentence1\tsentence2\tlabel"]
        for i in range(n):
            a, b = rng.choice(CORPUS), rng.choice(CORPUS)
            label = "entailment" if a == b or i % 2 else "not_entailment"
            lines.append(f"{i}\t{a}\t{b if label == 'not_entailment' else a}\t{label}")
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def train_data(tmp_path_factory) -> Path:
    """Official-format fixtures plus a 48-row RTE for runs that need a few optimizer steps."""
    root = write_official_fixtures(tmp_path_factory.mktemp("traindata"))
    import shutil

    shutil.rmtree(root / "RTE")
    write_rte_like(root / "RTE", 48)
    return root


@pytest.fixture(scope="session")
def tiny_nodrop(tmp_path_factory) -> Path:
    from stilts_tui.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("nodrop") / "roberta", "roberta", CORPUS, dropout=0.0)


def screen_text(app) -> str:
    """The text of every Static (labels, panels, status lines) on the app's current screen."""
    return "\n".join(str(w.render()) for w in app.screen.query("Static"))


def one_class_spec(tmp_path: Path, dev_labels: list[str], seeds: tuple[int, ...] = (1, 2)) -> Path:
    """A spec of one user task whose dev split has the given labels (its train split has both)."""
    import tomli_w

    data = tmp_path / "one_class"
    data.mkdir(exist_ok=True)
    for split, labels in (("train", ["no", "yes"]), ("dev", dev_labels)):
        (data / f"{split}.jsonl").write_text("".join(json.dumps({"text": f"s {i}", "y": y}) + "\n" for i, y in enumerate(labels)))
    (data / "task.toml").write_text(tomli_w.dumps({
        "name": "one_class", "head": "classification", "labels": ["no", "yes"], "data_dir": ".",
        "files": {"train": "train.jsonl", "dev": "dev.jsonl"}, "fields": {"a": "text", "label": "y"}}))
    spec = tmp_path / "one.toml"
    spec.write_text(tomli_w.dumps({"name": "one", "model": "minilm", "task_files": [str(data / "task.toml")],
                                   "targets": ["one_class"], "grid": {"lr": [1e-5], "seed": list(seeds)}}))
    return spec
