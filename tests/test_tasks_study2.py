"""The second study's sentence-level tasks (Pruksachatkun et al. 2020, jiant taskmaster_v1): each read
from a tiny fixture in its official release format, mapped to the encoding jiant gave it, and scored
with jiant's metric."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stilts_tui.errors import DataError
from stilts_tui.tasks import ClsExample, MCExample, get_task, load_examples
from stilts_tui.tasks.metrics import baseline_score, degenerate_threshold, f1, macro_f1, score


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _tsv(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


MNLI_HEADER = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
               "sentence2_parse\tsentence1\tsentence2")


@pytest.fixture(scope="module")
def study2_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study2")
    for split in ("train", "dev"):
        _tsv(root / "SST-2" / f"{split}.tsv", ["sentence\tlabel", "a gripping film \t1", "\t0", "dull and long \t0"])
        _tsv(root / "QQP" / f"{split}.tsv", ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
                                             "1\t1\t2\tHow do I cook rice?\tWhat is the way to cook rice?\t1",
                                             "2\t3\t4\tWhy is the sky blue?\tWho won the cup?\t",
                                             "3\t5\t6\t\tempty first question\t0"])
    _tsv(root / "MNLI" / "train.tsv", [MNLI_HEADER + "\tlabel1\tgold_label",
                                       "0\t1\t1n\tfiction\t(\t(\t(\t(\tA man sleeps.\tA person rests.\tentailment\tentailment"])
    for part, label in (("matched", "neutral"), ("mismatched", "contradiction")):
        _tsv(root / "MNLI" / f"dev_{part}.tsv",
             [MNLI_HEADER + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label",
              f"0\t1\t1n\tslate\t(\t(\t(\t(\tThe {part} premise.\tA hypothesis.\t{label}\t{label}\t{label}\t{label}\t{label}\t{label}"])
    for split in ("train", "dev"):
        _tsv(root / "SciTailV1.1" / "tsv_format" / f"scitail_1.0_{split}.tsv",
             ["Plants need light.\tLight is needed by plants.\tentails", "Rocks are hard.\tBirds fly south.\tneutral"])
    for split in ("train", "val"):
        _jsonl(root / "BoolQ" / f"{split}.jsonl", [
            {"question": "is the sky blue", "passage": "The sky is blue on a clear day.", "idx": 0, "label": True},
            {"question": "do fish fly", "passage": "Fish swim.", "idx": 1, "label": False}])
        _jsonl(root / "CB" / f"{split}.jsonl", [
            {"premise": "He said it rained.", "hypothesis": "It rained.", "label": "entailment", "idx": 0},
            {"premise": "She doubted it.", "hypothesis": "It happened.", "label": "neutral", "idx": 1},
            {"premise": "It never rained.", "hypothesis": "It rained.", "label": "contradiction", "idx": 2}])
        _jsonl(root / "COPA" / f"{split}.jsonl", [
            {"premise": "The man broke his toe.", "choice1": "He dropped a hammer on his foot.",
             "choice2": "He got a hole in his sock.", "question": "cause", "idx": 0, "label": 0},
            {"premise": "I tipped the bottle.", "choice1": "The liquid in the bottle froze.",
             "choice2": "The liquid in the bottle poured out.", "question": "effect", "idx": 1, "label": 1}])
        _jsonl(root / "RTE-SG" / f"{split}.jsonl", [
            {"premise": "A dog barks.", "hypothesis": "An animal makes noise.", "label": "entailment", "idx": 0},
            {"premise": "A cat sleeps.", "hypothesis": "A cat runs.", "label": "not_entailment", "idx": 1}])
    csqa = {"answerKey": "C", "id": "q1", "question": {"stem": "Where do you keep milk?", "choices": [
        {"label": k, "text": t} for k, t in zip("ABCDE", ["shelf", "oven", "fridge", "car", "bed"], strict=True)]}}
    for split in ("train", "dev"):
        _jsonl(root / "CommonsenseQA" / f"{split}_rand_split.jsonl", [csqa])
    _tsv(root / "probing" / "tree_depth.txt", ["tr\t5\tThe cat sat .", "tr\t12\tA very deep sentence .", "va\t7\tDogs bark .",
                                               "te\t6\tBirds sing ."])
    _tsv(root / "probing" / "word_content.txt", ["tr\tzebra\tThe zebra ran .", "tr\tapple\tAn apple fell .",
                                                 "va\tapple\tI ate an apple .", "te\tkiwi\tA kiwi ."])
    _tsv(root / "probing" / "bigram_shift.txt", ["tr\tI\tcat The sat .", "va\tO\tThe cat sat ."])
    for split in ("train", "dev"):
        _tsv(root / "FunctionWordsProbing" / "whwords" / "fold1" / f"{split}.tsv",
             ["w1\tWho did you see ?\tacceptable", "w2\tWhat who did ?\tunacceptable"])
    return root


def test_glue_pair_tasks_as_jiant_reads_them(study2_data):
    sst = load_examples(get_task("sst2"), "train", study2_data)
    assert sst == [ClsExample("a gripping film ", None, 1), ClsExample("dull and long ", None, 0)]  # empty sentence dropped
    qqp = load_examples(get_task("qqp"), "dev", study2_data)
    assert [ex.label for ex in qqp] == [1, 0] and qqp[1].b == "Who won the cup?"  # empty label is 0; empty question dropped
    mnli = load_examples(get_task("mnli"), "dev", study2_data)  # dev = matched + mismatched (tasks.py l. 1264)
    assert [(ex.a, ex.label) for ex in mnli] == [("The matched premise.", 0), ("The mismatched premise.", 2)]
    assert load_examples(get_task("mnli"), "train", study2_data) == [ClsExample("A man sleeps.", "A person rests.", 1)]
    assert [ex.label for ex in load_examples(get_task("scitail"), "train", study2_data)] == [1, 0]


def test_superglue_tasks_as_jiant_reads_them(study2_data):
    boolq = load_examples(get_task("boolq"), "dev", study2_data)
    assert boolq[0] == ClsExample("The sky is blue on a clear day.", "is the sky blue", 1)  # passage first
    assert [ex.label for ex in load_examples(get_task("cb"), "train", study2_data)] == [1, 0, 2]
    copa = load_examples(get_task("copa"), "dev", study2_data)
    assert copa[0] == MCExample((("The man broke his toe.", "What was the cause of this? He dropped a hammer on his foot."),
                                 ("The man broke his toe.", "What was the cause of this? He got a hole in his sock.")), 0)
    assert copa[1].choices[1][1] == "What happened as a result? The liquid in the bottle poured out." and copa[1].label == 1
    csqa = load_examples(get_task("commonsenseqa"), "train", study2_data)[0]
    assert csqa.label == 2 and csqa.choices[2] == ("Q:Where do you keep milk?", "A:fridge") and len(csqa.choices) == 5


def test_rte_reads_the_superglue_release_too(study2_data):
    rte = load_examples(get_task("rte"), "dev", study2_data / "RTE-SG")
    assert rte == [ClsExample("A dog barks.", "An animal makes noise.", 0), ClsExample("A cat sleeps.", "A cat runs.", 1)]


def test_senteval_probes_read_one_file_of_every_split(study2_data):
    depth = get_task("se_tree_depth")
    assert depth.num_labels == 8  # jiant's 8-way head, depths 5-12 (senteval_probing.py l. 321, 341)
    assert [ex.label for ex in load_examples(depth, "train", study2_data)] == [0, 7]
    assert load_examples(depth, "dev", study2_data) == [ClsExample("Dogs bark .", None, 2)]
    words = get_task("se_word_content")
    assert words.num_labels == 1000 and words.labels == ()
    assert [ex.label for ex in load_examples(words, "train", study2_data)] == [1, 0]  # sorted training labels
    assert load_examples(words, "dev", study2_data) == [ClsExample("I ate an apple .", None, 0)]
    assert load_examples(get_task("se_bigram_shift"), "dev", study2_data) == [ClsExample("The cat sat .", None, 1)]
    with pytest.raises(DataError, match="file not found"):
        load_examples(get_task("se_past_present"), "train", study2_data)


def test_acceptability_probe_reads_fold_one(study2_data):
    task = get_task("acceptability_wh")
    assert task.metric == "acc_f1" and task.batch_size == 4
    assert load_examples(task, "dev", study2_data) == [ClsExample("Who did you see ?", None, 1),
                                                       ClsExample("What who did ?", None, 0)]


def test_study_defaults_from_its_configs():
    """base_roberta.conf: 256 tokens, 10 epochs (40 for CB, COPA); transfer_analysis.sh batch sizes."""
    assert {get_task(n).max_length for n in ("sst2", "qqp", "mnli", "boolq", "cb", "copa", "se_tree_depth")} == {256}
    assert (get_task("cb").epochs, get_task("copa").epochs, get_task("boolq").epochs) == (40, 40, 10)
    assert {n: get_task(n).batch_size for n in ("sst2", "qqp", "copa", "mnli", "se_odd_man_out")} == \
        {"sst2": 64, "qqp": 8, "copa": 32, "mnli": 4, "se_odd_man_out": 64}


def test_f1_scores_by_hand():
    # class 1: TP 2, FP 1, FN 1 -> P = R = 2/3, F1 = 2/3
    preds, labels = [1, 1, 1, 0, 0], [1, 1, 0, 1, 0]
    assert f1(preds, labels) == pytest.approx(2 / 3)
    assert score("acc_f1", preds, labels) == pytest.approx((3 / 5 + 2 / 3) / 2)
    assert f1([0, 0], [1, 0]) == 0.0  # never predicted: 0, as AllenNLP's F1Measure
    # 3 classes: class 0 exactly right (F1 1), classes 1 and 2 swapped (F1 0 each)
    preds, labels = [0, 0, 1, 2], [0, 0, 2, 1]
    assert macro_f1(preds, labels, 3) == pytest.approx((1.0 + 0.0 + 0.0) / 3)
    preds, labels = [0, 1, 1, 2], [0, 1, 2, 2]
    assert macro_f1(preds, labels, 3) == pytest.approx((1.0 + 2 / 3 + 2 / 3) / 3)


def test_degenerate_and_baselines_on_f1_scales(study2_data):
    cb = get_task("cb")
    dev = load_examples(cb, "dev", study2_data)  # one example of each class
    # the best constant predictor gets F1 0.5 on its class, 0 on the others: macro 1/6
    assert degenerate_threshold(cb, dev) == pytest.approx(0.5 / 3)
    assert baseline_score(cb, dev, "majority") == pytest.approx(0.5 / 3)
    boolq = get_task("boolq")
    bdev = load_examples(boolq, "dev", study2_data)  # labels 1, 0: always 1 -> acc 1/2, F1 2/3
    assert degenerate_threshold(boolq, bdev) == pytest.approx((0.5 + 2 / 3) / 2)
    assert 0.0 <= baseline_score(boolq, bdev, "random") <= 1.0


def test_hub_rows_map_to_the_release_examples(monkeypatch):
    """The hub's schemas (label indices in the hub's own order, CommonsenseQA's column lists, MNLI's
    two dev splits) give the same examples as the release files."""
    import stilts_tui.tasks.loaders as loaders

    seen = []

    def rows(dataset, config, split):
        seen.append((dataset, config, split))
        if dataset == "nyu-mll/glue":  # hub MNLI: 0 entailment, 1 neutral, 2 contradiction
            return [{"premise": f"P {split}", "hypothesis": "H", "label": 2 if "mismatched" in split else 1, "idx": 0}]
        if dataset == "aps/super_glue":  # hub CB: 0 entailment, 1 contradiction, 2 neutral
            return [{"premise": "P", "hypothesis": "H", "label": 1, "idx": 0}]
        return [{"id": "q", "question": "Where?", "question_concept": "x", "answerKey": "B",
                 "choices": {"label": list("ABCDE"), "text": ["a", "b", "c", "d", "e"]}}]

    monkeypatch.setattr(loaders, "load_hub_rows", rows)
    mnli = get_task("mnli").load_hub("dev")
    assert [(ex.a, ex.label) for ex in mnli] == [("P validation_matched", 0), ("P validation_mismatched", 2)]
    assert get_task("cb").load_hub("dev") == [ClsExample("P", "H", 2)]
    csqa = get_task("commonsenseqa").load_hub("train")[0]
    assert csqa.label == 1 and csqa.choices[4] == ("Q:Where?", "A:e")
    assert ("nyu-mll/glue", "mnli", "validation_mismatched") in seen


@pytest.mark.parametrize("task", ["cb", "se_word_content", "copa"])
def test_the_worker_trains_and_scores_the_new_tasks(task, tiny_models, study2_data, tmp_path):
    """A real (tiny) run per new kind: a 3-way macro-F1 task, a head sized from the training labels,
    and COPA's 2-way multiple choice; the dev score is the task's own metric."""
    import io

    from stilts_tui.domain.events import parse_event
    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.train.events import EventWriter
    from stilts_tui.train.loop import run

    cfg = RunConfig(kind="target", model=str(tiny_models["roberta"]), task=task, data_dir=str(study2_data), lr=1e-3,
                    batch_size=2, epochs=1, max_length=32, seed=1, cache_dir=str(tmp_path / "cache"),
                    output_dir=str(tmp_path / "out"), log_interval_s=0)
    cfg.run_id = cfg.compute_id()
    buf = io.StringIO()
    metrics = run(cfg, EventWriter(cfg.run_id, None, buf))
    events = [e for e in map(parse_event, buf.getvalue().splitlines()) if e]
    assert metrics["metric"] == get_task(task).metric and 0.0 <= metrics["score"] <= 1.0
    assert [e["event"] for e in events if e["event"] in ("started", "eval")] == ["started", "eval"]
