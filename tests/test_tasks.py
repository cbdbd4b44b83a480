"""The task layer: every official format, every encoding token by token, metrics, bad input."""

from __future__ import annotations

import json
import re

import pytest
from conftest import shared_data_or_skip

from stilts_tui.errors import DataError, StiltsError
from stilts_tui.tasks import ClsExample, MCExample, get_task, load_examples
from stilts_tui.tasks.encode import encode
from stilts_tui.tasks.metrics import (
    accuracy,
    degenerate_threshold,
    majority_baseline,
    matthews_corrcoef,
    random_baseline,
)

ALL = ["rte", "cola", "wic", "mednli", "socialiqa", "winogrande_xs", "winogrande_s", "winogrande_m",
       "winogrande_l", "winogrande_xl", "hellaswag", "hellaswag_p", "synthesis_gpt2", "cosmosqa"]


@pytest.mark.parametrize("name", ALL)
def test_every_official_format_loads(official_data, name):
    task = get_task(name)
    for split in ("train", "dev"):
        examples = load_examples(task, split, official_data)
        assert examples, name
        for ex in examples:
            if task.head == "classification":
                assert isinstance(ex, ClsExample) and 0 <= ex.label < len(task.labels)
            else:
                assert isinstance(ex, MCExample) and len(ex.choices) == task.num_choices
                assert 0 <= ex.label < task.num_choices


def test_examples_carry_the_design_encodings(official_data):
    rte = load_examples(get_task("rte"), "train", official_data)
    assert rte[1] == ClsExample("The dog slept by the fire.", 'The "dog" ran away.', 1)
    cola = load_examples(get_task("cola"), "dev", official_data)
    assert cola[1] == ClsExample("Cat the mat on sat.", None, 0)
    wic = load_examples(get_task("wic"), "train", official_data)
    assert wic[0] == ClsExample(("bank", "the bank of the river ."), "the bank approved the budget .", 0)
    assert wic[1].label == 1
    med = load_examples(get_task("mednli"), "train", official_data)
    assert [e.label for e in med] == [0, 1, 2]  # the reference's order: entailment, contradiction, neutral
    siqa = load_examples(get_task("socialiqa"), "train", official_data)
    assert siqa[0].choices[0] == (("Tracy went to the market.", "Why did Tracy do this?"), "to buy bread")
    assert [e.label for e in siqa] == [0, 2]  # labels 1-3 in the .lst become 0-2
    wg = load_examples(get_task("winogrande_m"), "train", official_data)
    assert wg[0].choices == (("The trophy does not fit in the suitcase because the ", "trophy is too big."),
                             ("The trophy does not fit in the suitcase because the ", "suitcase is too big."))
    assert [e.label for e in wg] == [0, 0, 1]
    hs = load_examples(get_task("hellaswag"), "train", official_data)
    assert hs[0].choices[0] == ("A man is standing on a roof.", "he removes the ice from the roof .")
    assert hs[1].choices[1] == ("A woman is in a kitchen.", " she cooks pasta in a pot .")  # empty ctx_b, unstripped
    hp = load_examples(get_task("hellaswag_p"), "train", official_data)
    assert hp[0].choices[0] == ("removes the ice from the roof .", None)
    syn = load_examples(get_task("synthesis_gpt2"), "train", official_data)
    assert syn[0].choices[0] == ("The committee approved the budget", "after a long debate .")
    cos = load_examples(get_task("cosmosqa"), "train", official_data)
    assert cos[0].choices[0] == (("It rained, so we stayed in.", "Why did we stay in?"), "It rained.")


def _tokens(tok, ids):
    return tok.convert_ids_to_tokens(ids)


def _piece(tok, text):
    return tok.tokenize(text)


def test_pair_encoding_token_by_token(official_data, tokenizers):
    rte = get_task("rte")
    ex = load_examples(rte, "train", official_data)[:1]
    rob, bert = tokenizers["roberta"], tokenizers["bert"]
    f = encode(rte, ex, rob, 100)
    a, b = "The cat sat on the mat.", "A cat is on a mat."
    assert _tokens(rob, f["input_ids"][0]) == ["<s>", *_piece(rob, a), "</s>", "</s>", *_piece(rob, b), "</s>"]
    assert rob.decode(f["input_ids"][0]) == f"<s>{a}</s></s>{b}</s>"
    f = encode(rte, ex, bert, 100)
    assert _tokens(bert, f["input_ids"][0]) == ["[CLS]", *_piece(bert, a), "[SEP]", *_piece(bert, b), "[SEP]"]
    n_a = len(_piece(bert, a)) + 2
    assert f["token_type_ids"][0] == [0] * n_a + [1] * (len(_piece(bert, b)) + 1)
    assert "labels" in f and f["labels"] == [0]
    # Padding is left to the collator: lengths differ between examples.
    two = encode(rte, load_examples(rte, "train", official_data), rob, 100)
    assert len({len(x) for x in two["input_ids"]}) > 1


def test_single_sentence_and_joined_segments(official_data, tokenizers):
    rob, bert = tokenizers["roberta"], tokenizers["bert"]
    cola = get_task("cola")
    f = encode(cola, load_examples(cola, "train", official_data)[:1], rob, 50)
    assert rob.decode(f["input_ids"][0]) == "<s>The cat sat on the mat.</s>"
    wic = get_task("wic")
    ex = load_examples(wic, "train", official_data)[:1]
    f = encode(wic, ex, rob, 70)
    assert rob.decode(f["input_ids"][0]) == "<s>bank</s>the bank of the river .</s></s>the bank approved the budget .</s>"
    toks = _tokens(rob, f["input_ids"][0])
    word = _piece(rob, "bank")
    assert toks[: len(word) + 2] == ["<s>", *word, "</s>"]
    f = encode(wic, ex, bert, 70)
    assert _tokens(bert, f["input_ids"][0]) == ["[CLS]", "bank", "[SEP]", *_piece(bert, "the bank of the river ."), "[SEP]",
                                                *_piece(bert, "the bank approved the budget ."), "[SEP]"]


def test_multiple_choice_encoding_and_truncation_keeps_every_choice(official_data, tokenizers):
    rob, bert = tokenizers["roberta"], tokenizers["bert"]
    hs = get_task("hellaswag")
    ex = load_examples(hs, "train", official_data)[:1]
    f = encode(hs, ex, rob, 120)
    assert len(f["input_ids"][0]) == 4
    for i, ending in enumerate(ex[0].choices):
        assert rob.decode(f["input_ids"][0][i]) == f"<s>{ending[0]}</s></s>{ending[1]}</s>"
    wg = get_task("winogrande_xs")
    f = encode(wg, load_examples(wg, "train", official_data)[:1], bert, 8)
    assert len(f["input_ids"][0]) == 2 and all(len(ids) == 8 for ids in f["input_ids"][0])
    for ids in f["input_ids"][0]:  # both segments survive truncation
        toks = _tokens(bert, ids)
        assert toks[0] == "[CLS]" and toks.count("[SEP]") == 2 and toks[-1] == "[SEP]"
    siqa = get_task("socialiqa")
    f = encode(siqa, load_examples(siqa, "train", official_data)[:1], rob, 70)
    assert rob.decode(f["input_ids"][0][2]) == "<s>Tracy went to the market.</s>Why did Tracy do this?</s></s>to swim</s>"
    hp = get_task("hellaswag_p")
    f = encode(hp, load_examples(hp, "train", official_data)[:1], bert, 50)
    assert _tokens(bert, f["input_ids"][0][0]) == ["[CLS]", *_piece(bert, "removes the ice from the roof ."), "[SEP]"]


def test_metrics_against_known_values():
    assert accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == 0.5
    assert matthews_corrcoef([1, 1, 1, 1], [1, 0, 1, 0]) == 0.0  # constant predictor
    assert matthews_corrcoef([1, 0, 1, 0], [1, 0, 1, 0]) == 1.0
    assert matthews_corrcoef([0, 1, 0, 1], [1, 0, 1, 0]) == -1.0
    # TP=2 FN=1 FP=1 TN=2 -> (4-1)/sqrt(3*3*3*3) = 1/3
    assert matthews_corrcoef([1, 1, 0, 0, 1, 0], [1, 1, 1, 0, 0, 0]) == pytest.approx(1 / 3)


def test_baselines_from_dev_labels(official_data):
    rte = get_task("rte")
    dev = load_examples(rte, "dev", official_data)
    assert majority_baseline(rte, dev) == pytest.approx(2 / 3)
    assert random_baseline(rte) == 0.5
    assert degenerate_threshold(rte, dev) == pytest.approx(2 / 3)
    hs = get_task("hellaswag")
    assert random_baseline(hs) == 0.25
    assert degenerate_threshold(hs, load_examples(hs, "dev", official_data)) == pytest.approx(0.26)
    cola = get_task("cola")
    assert degenerate_threshold(cola, load_examples(cola, "dev", official_data)) == 0.0


def test_task_names_are_normalised():
    assert get_task("HellaSwag-p").name == "hellaswag_p"
    assert get_task("WinoGrande-M").name == "winogrande_m"
    assert get_task("Synthesis_GPT2").name == "synthesis_gpt2"
    with pytest.raises(StiltsError, match="did you mean rte"):
        get_task("rtee")


# ------------------------------------------------------------------ bad input


def _bad(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path.parent


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(DataError, match=r"train\.tsv.*file not found"):
        load_examples(get_task("rte"), "train", tmp_path)


def test_wrong_columns_name_file_and_line(tmp_path):
    d = _bad(tmp_path / "RTE" / "train.tsv", "index\tpremise\thypothesis\tlabel\n0\ta\tb\tentailment\n")
    with pytest.raises(DataError) as err:
        load_examples(get_task("rte"), "train", d.parent)
    assert "train.tsv, line 1" in str(err.value) and "sentence1" in str(err.value)


def test_unknown_label_names_file_and_line(tmp_path):
    d = _bad(tmp_path / "RTE" / "train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\tmaybe\n")
    with pytest.raises(DataError) as err:
        load_examples(get_task("rte"), "train", d.parent)
    assert "train.tsv, line 3" in str(err.value) and "'maybe'" in str(err.value)


def test_winogrande_sentence_without_blank(tmp_path):
    row = {"sentence": "No blank here.", "option1": "a", "option2": "b", "answer": "1"}
    _bad(tmp_path / "winogrande_1.1" / "train_m.jsonl", json.dumps(row) + "\n")
    with pytest.raises(DataError) as err:
        load_examples(get_task("winogrande_m"), "train", tmp_path)
    assert "train_m.jsonl, line 1" in str(err.value) and "blank" in str(err.value)


def test_empty_file(tmp_path):
    _bad(tmp_path / "mednli" / "mli_train_v1.jsonl", "")
    with pytest.raises(DataError, match=r"mli_train_v1\.jsonl: file has no data rows"):
        load_examples(get_task("mednli"), "train", tmp_path)


def test_bad_json_and_label_count_mismatch(tmp_path):
    _bad(tmp_path / "hellaswag" / "hellaswag_train.jsonl", '{"ctx_a": "x"\n')
    with pytest.raises(DataError, match="line 1.*not valid JSON"):
        load_examples(get_task("hellaswag"), "train", tmp_path)
    siqa = tmp_path / "socialiqa"
    _bad(siqa / "train.jsonl", json.dumps({"context": "c", "question": "q", "answerA": "a", "answerB": "b", "answerC": "c"}) + "\n")
    (siqa / "train-labels.lst").write_text("1\n2\n")
    with pytest.raises(DataError, match="has 2 labels but the data file has 1 rows"):
        load_examples(get_task("socialiqa"), "train", tmp_path)


def test_hub_path_fails_fast_offline(monkeypatch):
    import time

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(StiltsError, match="pass --data-dir"):
        load_examples(get_task("rte"), "train", None)
    assert time.monotonic() - start < 5
    with pytest.raises(StiltsError, match="not on the Hugging Face hub"):
        load_examples(get_task("mednli"), "train", None)


def test_hub_rows_map_to_the_same_examples(monkeypatch):
    """The hub mappings turn the hub's schemas into the same examples the file loaders give."""
    import stilts_tui.tasks.loaders as loaders

    hub_rows = {
        "nyu-mll/glue": [{"sentence1": "A cat.", "sentence2": "A pet.", "label": 1, "idx": 0}],
        "allenai/winogrande": [{"sentence": "Mary thanked Sue because _ helped.", "option1": "Mary", "option2": "Sue", "answer": "2"}],
        "Rowan/hellaswag": [{"ctx_a": "A man.", "ctx_b": "he", "endings": ["a", "b", "c", "d"], "label": "3"}],
        "aps/super_glue": [{"word": "bank", "sentence1": "s1", "sentence2": "s2", "label": 1}],
    }
    monkeypatch.setattr(loaders, "load_hub_rows", lambda ds, cfg, split: hub_rows[ds])
    assert get_task("rte").load_hub("train") == [ClsExample("A cat.", "A pet.", 1)]
    assert get_task("wic").load_hub("dev") == [ClsExample(("bank", "s1"), "s2", 1)]
    wg = get_task("winogrande_xs").load_hub("train")[0]
    assert wg.label == 1 and wg.choices[1] == ("Mary thanked Sue because ", "Sue helped.")
    assert get_task("hellaswag").load_hub("train")[0].choices[3] == ("A man.", "he d")


# ------------------------------------------------------------------ user tasks


def test_user_defined_task_from_toml(tmp_path, tokenizers):
    from stilts_tui.tasks import register_task_file

    data = tmp_path / "paraphrase"
    data.mkdir()
    for split in ("train", "dev"):
        (data / f"{split}.tsv").write_text("q1\tq2\tsame\nhow old are you\twhat is your age\tyes\nhi\tbye\tno\n")
    spec = tmp_path / "para.toml"
    spec.write_text('name = "paraphrase"\nhead = "classification"\nlabels = ["no", "yes"]\nformat = "tsv"\n'
                    'data_dir = "paraphrase"\nepochs = 2\n[files]\ntrain = "train.tsv"\ndev = "dev.tsv"\n'
                    '[fields]\na = "q1"\nb = "q2"\nlabel = "same"\n')
    task = register_task_file(spec)
    assert get_task("paraphrase") is task and task.epochs == 2
    ex = load_examples(task, "train", None)  # the file names its own data folder: no --data-dir needed
    assert ex == [ClsExample("how old are you", "what is your age", 1), ClsExample("hi", "bye", 0)]
    assert load_examples(task, "train", tmp_path / "elsewhere") == ex  # and that folder wins over a --data-dir
    mc = tmp_path / "mc.toml"
    mc.write_text('name = "pick"\nhead = "multiple_choice"\nformat = "jsonl"\n[files]\ntrain = "t.jsonl"\ndev = "t.jsonl"\n'
                  '[fields]\na = ["ctx", "q"]\nlabel = "y"\nchoices = ["o1", "o2", "o3"]\nlabel_base = 1\n')
    (tmp_path / "pick").mkdir()
    (tmp_path / "pick" / "t.jsonl").write_text(json.dumps({"ctx": "c", "q": "q", "o1": "x", "o2": "y", "o3": "z", "y": 3}) + "\n")
    pick = register_task_file(mc)
    assert load_examples(pick, "dev", tmp_path) == [MCExample(((("c", "q"), "x"), (("c", "q"), "y"), (("c", "q"), "z")), 2)]


def test_user_task_errors_are_clear(tmp_path):
    from stilts_tui.tasks import register_task_file

    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nhead = "regression"\n[files]\ntrain="a"\ndev="b"\n[fields]\na="a"\nlabel="l"\n')
    with pytest.raises(StiltsError, match="head = 'regression'"):
        register_task_file(bad)
    bad.write_text('name = "x"\nhed = "classification"\n')
    with pytest.raises(StiltsError, match="unknown key.*hed"):
        register_task_file(bad)
    fields = '[files]\ntrain="a"\ndev="b"\n[fields]\na="a"\nlabel="l"\n'
    for line, words in (("epochs = 0", "epochs = 0 is out of range"), ("max_length = 2.5", "max_length = 2.5 is not an integer"),
                        ("batch_size = -8", "batch_size = -8 is out of range"), ('metric = "bleu"', "metric = 'bleu' is not one of")):
        bad.write_text(f'name = "x"\nhead = "classification"\nlabels = ["a", "b"]\n{line}\n{fields}')
        with pytest.raises(StiltsError, match=re.escape(words)):
            register_task_file(bad)
    bad.write_text(f'name = "x"\nhead = "classification"\nlabels = ["a", "b"]\n{fields}label_base = -1\n')
    with pytest.raises(StiltsError, match=re.escape("[fields]: label_base = -1 is out of range")):
        register_task_file(bad)
    bad.write_text("name = \n")
    with pytest.raises(StiltsError, match="not valid TOML"):
        register_task_file(bad)


# ------------------------------------------------------------------ real data


def test_real_rte_and_cola():
    data = shared_data_or_skip()
    rte = get_task("rte")
    train, dev = load_examples(rte, "train", data), load_examples(rte, "dev", data)
    assert (len(train), len(dev)) == (2490, 277)
    assert sum(e.label == 0 for e in dev) == 146
    assert majority_baseline(rte, dev) == pytest.approx(146 / 277)
    cola = get_task("cola")
    ctrain, cdev = load_examples(cola, "train", data), load_examples(cola, "dev", data)
    assert (len(ctrain), len(cdev)) == (8551, 527)
    assert sum(e.label == 1 for e in cdev) == 365
    assert matthews_corrcoef([1] * len(cdev), [e.label for e in cdev]) == 0.0


# ------------------------------------------------------------------ names that become paths, files that are not files


def _task_file(path, name: str, **files: str):
    import tomli_w

    path.write_text(tomli_w.dumps({"name": name, "head": "classification", "labels": ["a", "b"], "format": "jsonl",
                                   "data_dir": ".", "files": {"train": "t.jsonl", "dev": "t.jsonl"} | files,
                                   "fields": {"a": "text", "label": "y"}}), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["../../x/ESCAPED", "a/b", "..", "", "C:\\x", "tab\there", "/abs"])
def test_a_task_name_that_would_be_a_path_is_refused(tmp_path, name):
    """The name becomes part of the tokenised cache's folder name: a name with a path in it
    (`../../x/ESCAPED` wrote the cache outside the cache folder) is refused, saying which name and
    what a name may hold, before any file is written."""
    from stilts_tui.errors import SpecError
    from stilts_tui.tasks import register_task_file

    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(SpecError) as err:
        register_task_file(_task_file(tmp_path / "bad.toml", name))
    assert f"bad.toml: name = {name!r} is not a task name" in err.value.problem
    assert "letters, digits, _ and -" in err.value.problem and "file names" in err.value.problem
    assert err.value.fix and err.value.fix.startswith('e.g. name = "')
    assert sorted(tmp_path.rglob("*")) == before + [tmp_path / "bad.toml"]


def test_task_names_with_case_hyphens_and_spaces_are_still_names(tmp_path):
    from stilts_tui.tasks import register_task_file

    assert register_task_file(_task_file(tmp_path / "ok.toml", "My-Task 2")).name == "my_task_2"
    assert get_task("my task 2").name == "my_task_2"  # as every other task name, in any spelling


def test_the_tokenised_cache_stays_inside_its_folder_whatever_the_task_name(tmp_path, tokenizers):
    """Even a task registered from code (no task file to refuse it) cannot put the cache outside
    the cache folder: its name is made a safe file name there."""
    from dataclasses import replace

    from stilts_tui.tasks import register_task_file
    from stilts_tui.train.data import tokenised_split

    data = tmp_path / "data"
    data.mkdir()
    (data / "t.jsonl").write_text("".join(json.dumps({"text": f"the dog {i}", "y": "ab"[i % 2]}) + "\n" for i in range(4)))
    task = replace(register_task_file(_task_file(data / "ok.toml", "ok")), name="../../x/ESCAPED")
    cache = tmp_path / "a" / "b" / "cache"
    dataset, examples = tokenised_split(task, "dev", None, tokenizers["roberta"], 32, cache)
    assert len(dataset) == len(examples) == 4
    written = [p for p in tmp_path.rglob("*") if not p.is_relative_to(data)]
    assert written and all(p.is_relative_to(cache) or p in cache.parents for p in written), written
    assert not (tmp_path / "a" / "x").exists()
    assert [p.name for p in cache.iterdir() if p.is_dir()][0].startswith(".._.._x_ESCAPED-dev-")


@pytest.mark.parametrize("kind", ["character device", "FIFO", "directory"])
def test_a_data_file_that_is_not_a_regular_file_says_what_it_is(tmp_path, kind):
    """/dev/zero, a named pipe or a folder where the data file should be: said as such (it said
    "file not found"), and never opened (a FIFO would block the read forever)."""
    import os

    from stilts_tui.tasks import register_task_file

    where = {"character device": "/dev/zero", "FIFO": str(tmp_path / "pipe"), "directory": str(tmp_path / "folder")}[kind]
    if kind == "FIFO":
        os.mkfifo(where)
    if kind == "directory":
        os.mkdir(where)
    task = register_task_file(_task_file(tmp_path / "t.toml", "odd_file", dev=where))
    with pytest.raises(DataError) as err:
        load_examples(task, "dev", None)
    assert err.value.problem == f"{where}: is not a regular file (a {kind})"
    assert err.value.fix and "data file" in err.value.fix


def test_a_release_file_that_is_a_folder_says_so(tmp_path):
    (tmp_path / "RTE" / "dev.tsv").mkdir(parents=True)
    with pytest.raises(DataError) as err:
        load_examples(get_task("rte"), "dev", tmp_path)
    assert err.value.problem == f"{tmp_path / 'RTE' / 'dev.tsv'}: is not a regular file (a directory)"
    pos = tmp_path / "edges" / "ontonotes" / "const" / "pos"  # a licensed release: not "get the corpus" either
    (pos / "labels.txt").mkdir(parents=True)
    (pos / "development.json").write_text(json.dumps({"text": "a b", "targets": []}) + "\n")
    with pytest.raises(DataError) as err:
        load_examples(get_task("edges_pos"), "dev", tmp_path)
    assert err.value.problem == f"{pos / 'labels.txt'}: is not a regular file (a directory)"


@pytest.mark.parametrize("fmt", ["tsv", "jsonl", "csv"])
def test_a_line_over_the_length_limit_names_file_line_and_limit(tmp_path, monkeypatch, fmt):
    """A file without line breaks (a 2 GB blob was read as one 4.2 GB line) stops at the limit,
    saying the file, the line and the limit; lines up to the limit read as before."""
    from stilts_tui.tasks import formats, register_task_file

    monkeypatch.setattr(formats, "MAX_LINE_CHARS", 60, raising=False)
    head = {"tsv": "text\ty", "jsonl": "", "csv": "text,y"}[fmt]
    row = {"tsv": "{}\ta", "jsonl": '{{"text": "{}", "y": "a"}}', "csv": "{},a"}[fmt]
    ok = row.format("x" * (60 - len(row.format(""))))  # exactly at the limit
    lines = [line for line in (head, ok, row.format("y" * 200)) if line]
    (tmp_path / f"d.{fmt}").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    import tomli_w

    (tmp_path / "t.toml").write_text(tomli_w.dumps({
        "name": "long_lines", "head": "classification", "labels": ["a", "b"], "format": fmt,
        "files": {"train": f"d.{fmt}", "dev": f"d.{fmt}"}, "fields": {"a": "text", "label": "y"}}))
    task = register_task_file(tmp_path / "t.toml")
    with pytest.raises(DataError) as err:
        load_examples(task, "dev", tmp_path)
    line = len(lines)
    assert err.value.problem.startswith(f"{tmp_path / f'd.{fmt}'}, line {line}: line longer than the limit of 60 characters")
    assert err.value.line == line and "line breaks" in (err.value.fix or "")
    monkeypatch.setattr(formats, "MAX_LINE_CHARS", 61 + 200, raising=False)
    assert [e.a for e in load_examples(task, "dev", tmp_path)] == ["x" * (60 - len(row.format(""))), "y" * 200]


def test_a_gzip_line_over_the_limit_is_refused_too(tmp_path, monkeypatch):
    """QA-SRL's gzipped JSON lines read through the same bound (they were read whole, then split)."""
    import gzip

    from stilts_tui.tasks import formats

    monkeypatch.setattr(formats, "MAX_LINE_CHARS", 50, raising=False)
    (tmp_path / "QASRL").mkdir()
    with gzip.open(tmp_path / "QASRL" / "dev.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"sentenceTokens": ["a"] * 40, "verbEntries": {}}) + "\n")
    with pytest.raises(DataError) as err:
        load_examples(get_task("qasrl"), "dev", tmp_path)
    assert err.value.line == 1 and "line longer than the limit of 50 characters" in err.value.problem
