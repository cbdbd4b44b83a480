"""The second study's inputs as jiant taskmaster_v1 built them (``inputs = "jiant"``): each text
tokenised on its own and cut to max_seq_len - 2, token lists joined, RoBERTa's boundary tokens;
SocialIQA / CosmosQA / ReCoRD as jiant built them; MultiRC and ReCoRD passages cut; ReCoRD's epoch
counted per passage; edge probing uncut. The expected ids are jiant's construction written out
below with a RoBERTa-style byte-level BPE, never this project's encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stilts_tui.tasks import get_task, load_examples
from stilts_tui.tasks.encode import encode

MAX_SEQ_LEN = 256


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# One raw row per task, in its release format (lower-case words of the tiny tokenizer's corpus, so
# that a word with and without its leading-space marker are different ids).
SST = {"sentence": "the cat sat on the mat .", "label": "1"}
QQP = ("the dog slept by the fire ?", "the cat sat on the mat ?")
MNLI = ("a man is playing a guitar .", "people dance .")
SCITAIL = ("the bank of the river was muddy .", "the river was muddy .")
BOOLQ = {"question": "is the river muddy", "passage": "the bank of the river was muddy after the storm .", "idx": 0,
         "label": True}
CB = {"premise": "he said the weather would be fine .", "hypothesis": "it rained all day .", "label": "neutral", "idx": 0}
COPA = {"premise": "the children ran across the park .", "choice1": "the bus passed .", "choice2": "the dog slept .",
        "question": "effect", "idx": 0, "label": 0}
CSQA = {"answerKey": "A", "id": "q", "question": {"stem": "where is the cat ?", "choices": [
    {"label": k, "text": t} for k, t in zip("ABCDE", ["the mat", "the park", "the bus", "the market", "the fire"],
                                            strict=True)]}}
SIQA = {"context": "she went to the market .", "question": "why did she do this ?", "answerA": "to buy apples",
        "answerB": "to catch the bus", "answerC": "the dog slept"}
COSMOS = ("the man is playing a guitar on the stage .", "why do people dance ?",
          ["the man plays", "the dog slept", "the bus", "none of the above"])
HELLA = {"ind": 1, "ctx_a": "a man is playing a guitar .", "ctx_b": "the", "endings": [
    "people dance .", "cat sat .", "dog slept .", "bus passed ."], "label": 0, "activity_label": "x", "ctx": "", "split": "train",
    "split_type": "indomain", "source_id": "x"}
MULTIRC = {"idx": 0, "version": 1.1, "passage": {"text": "the cat sat on the mat and the dog slept by the fire .",
                                                 "questions": [{"question": "where did the cat sit ?", "idx": 0, "answers": [
                                                     {"text": "the mat", "idx": 0, "label": 1},
                                                     {"text": "the fire", "idx": 1, "label": 0}]}]}}
RECORD_TEXT = "the committee approved the budget after a long debate . the bank of the river was muddy ."
RECORD = {"idx": 3, "passage": {"text": RECORD_TEXT, "entities": [{"start": 4, "end": 12}, {"start": 58, "end": 62}]},
          "qas": [{"query": "the @placeholder approved the budget .", "idx": 0,
                   "answers": [{"start": 4, "end": 12, "text": "committee"}]},
                  {"query": "the @placeholder was muddy .", "idx": 1, "answers": [{"start": 58, "end": 62, "text": "river"}]}]}
PROBE_SENT = "the dog slept by the fire ."
ACCEPT_SENT = "she went to the market ."


@pytest.fixture(scope="module")
def raw_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("jiant_inputs")
    for split in ("train", "dev"):
        _text(root / "SST-2" / f"{split}.tsv", f"sentence\tlabel\n{SST['sentence']}\t1\n")
        _text(root / "QQP" / f"{split}.tsv", f"id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n1\t1\t2\t{QQP[0]}\t{QQP[1]}\t1\n")
        _text(root / "SciTailV1.1" / "tsv_format" / f"scitail_1.0_{split}.tsv", f"{SCITAIL[0]}\t{SCITAIL[1]}\tentails\n")
        _text(root / "RTE" / f"{split}.tsv", f"index\tsentence1\tsentence2\tlabel\n0\t{MNLI[0]}\t{MNLI[1]}\tentailment\n")
        _text(root / "CoLA" / "raw" / f"in_domain_{split}.tsv", f"gj04\t1\t\t{SST['sentence']}\n")
        _text(root / "FunctionWordsProbing" / "whwords" / "fold1" / f"{split}.tsv", f"w1\t{ACCEPT_SENT}\tacceptable\n")
        _jsonl(root / "socialiqa-train-dev" / f"{split}.jsonl", [SIQA])
        _text(root / "socialiqa-train-dev" / f"{split}-labels.lst", "1\n")
        _jsonl(root / "CommonsenseQA" / f"{split}_rand_split.jsonl", [CSQA])
    header = "index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2"
    _text(root / "MNLI" / "train.tsv", f"{header}\tlabel1\tgold_label\n0\t1\t1\tf\t(\t(\t(\t(\t{MNLI[0]}\t{MNLI[1]}\tneutral\tneutral\n")
    for part in ("matched", "mismatched"):
        _text(root / "MNLI" / f"dev_{part}.tsv", f"{header}\tlabel1\tgold_label\n0\t1\t1\tf\t(\t(\t(\t(\t{MNLI[0]}\t{MNLI[1]}\tneutral\tneutral\n")
    for split in ("train", "val"):
        _jsonl(root / "BoolQ" / f"{split}.jsonl", [BOOLQ])
        _jsonl(root / "CB" / f"{split}.jsonl", [CB])
        _jsonl(root / "COPA" / f"{split}.jsonl", [COPA])
        _jsonl(root / "MultiRC" / f"{split}.jsonl", [MULTIRC])
        _jsonl(root / "ReCoRD" / f"{split}.jsonl", [RECORD])
    for name in ("train", "valid"):
        context, question, answers = COSMOS
        _text(root / "cosmosqa" / f"{name}.csv", "id,context,question,answer0,answer1,answer2,answer3,label\n"
              f'q1,"{context}","{question}",{",".join(answers)},0\n')
    _jsonl(root / "hellaswag" / "hellaswag_train.jsonl", [HELLA])
    _jsonl(root / "hellaswag" / "hellaswag_val.jsonl", [HELLA])
    _text(root / "probing" / "bigram_shift.txt", f"tr\tI\t{PROBE_SENT}\nva\tO\t{PROBE_SENT}\n")
    return root


class Jiant:
    """jiant's construction with a RoBERTa tokenizer: utils/data_loaders.py tokenize_and_truncate
    (l. 302-311) and RoBERTa's apply_boundary_tokens (pytorch_transformers_interface/modules.py
    l. 335-345)."""

    def __init__(self, tok) -> None:
        self.tok = tok

    def tt(self, text: str, max_seq_len: int = MAX_SEQ_LEN) -> list[str]:
        return self.tok.tokenize(text)[: max_seq_len - 2]

    def ids(self, s1: list[str], s2: list[str] | None = None) -> list[int]:
        s = ["<s>"] + s1 + ["</s>", "</s>"] + s2 + ["</s>"] if s2 else ["<s>"] + s1 + ["</s>"]
        return self.tok.convert_tokens_to_ids(s)

    def record_query(self, query: str, ent: str, max_ent_length: int) -> list[str]:
        """qa.py l. 235-247 (tokenize_preserve_placeholder) and l. 312-316 (insert_ent)."""
        sent_parts = query.split("@placeholder")
        placeholder_loc = len(self.tt(sent_parts[0], MAX_SEQ_LEN - max_ent_length))
        sent_tok = self.tt(query, MAX_SEQ_LEN - max_ent_length)
        template = sent_tok[:placeholder_loc] + ["@placeholder"] + sent_tok[placeholder_loc:]
        split_idx = template.index("@placeholder")
        return template[:split_idx] + self.tt(ent) + template[split_idx + 1 :]


def expected(task: str, j: Jiant) -> list[list[int]] | list[list[list[int]]]:
    """Each row's (or each example's choices') ids, as jiant built them from the raw row."""
    tt = j.tt
    if task in ("sst2", "cola"):
        return [j.ids(tt(SST["sentence"]))]
    if task == "se_bigram_shift":
        return [j.ids(tt(PROBE_SENT))]
    if task == "acceptability_wh":
        return [j.ids(tt(ACCEPT_SENT))]
    if task == "qqp":
        return [j.ids(tt(QQP[0]), tt(QQP[1]))]
    if task in ("mnli", "rte"):  # MNLI dev is dev_matched + dev_mismatched: two rows
        return [j.ids(tt(MNLI[0]), tt(MNLI[1]))] * (2 if task == "mnli" else 1)
    if task == "scitail":
        return [j.ids(tt(SCITAIL[0]), tt(SCITAIL[1]))]
    if task == "boolq":  # passage first (tasks.py l. 3291-3292)
        return [j.ids(tt(BOOLQ["passage"]), tt(BOOLQ["question"]))]
    if task == "cb":
        return [j.ids(tt(CB["premise"]), tt(CB["hypothesis"]))]
    if task == "copa":  # tasks.py l. 2946-2990: question + choice, token lists
        q = tt("What happened as a result?")
        return [[j.ids(tt(COPA["premise"]), q + tt(COPA[c])) for c in ("choice1", "choice2")]]
    if task == "commonsenseqa":  # qa.py l. 876-882
        return [[j.ids(tt("Q:" + CSQA["question"]["stem"]), tt("A:" + c["text"])) for c in CSQA["question"]["choices"]]]
    if task == "socialiqa":  # tasks.py l. 2838-2856, 2888
        return [[j.ids(tt(SIQA["context"]), tt(SIQA["question"]) + tt(SIQA[f"answer{c}"])) for c in "ABC"]]
    if task == "cosmosqa":  # qa.py l. 986-997
        context, question, answers = COSMOS
        qa = [tt(question + " " + a) for a in answers]
        ctx = tt(context, MAX_SEQ_LEN - max(len(x) for x in qa))
        return [[j.ids(ctx, x) for x in qa]]
    if task == "hellaswag":  # tasks.py l. 3125-3135
        return [[j.ids(tt(HELLA["ctx_a"]), tt(HELLA["ctx_b"] + " " + e)) for e in HELLA["endings"]]]
    if task == "multirc":  # qa.py l. 84-93, 126-127
        p, q = MULTIRC["passage"], MULTIRC["passage"]["questions"][0]
        return [j.ids(tt(p["text"]), tt(q["question"]) + tt(a["text"])) for a in q["answers"]]
    if task == "record":  # qa.py l. 253-258, 349-357
        ents = [RECORD_TEXT[e["start"] : e["end"] + 1] for e in RECORD["passage"]["entities"]]
        longest = max(e["end"] - e["start"] + 1 for e in RECORD["passage"]["entities"])
        return [j.ids(tt(RECORD_TEXT), j.record_query(qa["query"], ent, longest)) for qa in RECORD["qas"] for ent in ents]
    raise KeyError(task)


STUDY2_INPUT_TASKS = ["sst2", "qqp", "mnli", "scitail", "rte", "boolq", "cb", "copa", "commonsenseqa", "socialiqa",
                      "cosmosqa", "hellaswag", "multirc", "record", "se_bigram_shift", "cola", "acceptability_wh"]


@pytest.mark.parametrize("task", STUDY2_INPUT_TASKS)
def test_token_ids_are_jiants(task, raw_data, tokenizers):
    tok = tokenizers["roberta"]
    t = get_task(task)
    examples = load_examples(t, "dev", str(raw_data))
    features = encode(t, examples, tok, MAX_SEQ_LEN, inputs="jiant")
    assert features["input_ids"] == expected(task, Jiant(tok))
    if t.head == "candidates":
        assert features["row_example"] == list(range(len(examples)))  # one row per candidate, no windows


def test_a_later_part_starts_without_the_space_marker(raw_data, tokenizers):
    tok = tokenizers["roberta"]
    copa = get_task("copa")
    ex = load_examples(copa, "dev", str(raw_data))
    jiant = encode(copa, ex, tok, MAX_SEQ_LEN, inputs="jiant")["input_ids"][0][0]
    reference = encode(copa, ex, tok, MAX_SEQ_LEN)["input_ids"][0][0]
    the, space_the = tok.convert_tokens_to_ids(["the", "Ġthe"])
    q = len(tok.tokenize(COPA["premise"])) + 3 + len(tok.tokenize("What happened as a result?"))
    assert jiant[q] == the and reference[q] == space_the
    assert jiant[:q] == reference[:q] and jiant[q + 1 :] == reference[q + 1 :]


def test_reference_inputs_are_unchanged_by_the_pieces(raw_data, tokenizers):
    """The first study's (and a user's) encodings: segment B as one string, as before."""
    from stilts_tui.tasks.encode import _encode_pairs

    tok = tokenizers["roberta"]
    copa = get_task("copa")
    ex = load_examples(copa, "dev", str(raw_data))
    plain = [(str(a), str(b)) for a, b in ex[0].choices]
    assert encode(copa, ex, tok, MAX_SEQ_LEN)["input_ids"][0] == _encode_pairs(tok, plain, MAX_SEQ_LEN)["input_ids"]
    siqa = get_task("socialiqa")
    ex = load_examples(siqa, "dev", str(raw_data))
    sep = tok.sep_token
    plain = [(f"{SIQA['context']}{sep}{SIQA['question']}", SIQA[f"answer{c}"]) for c in "ABC"]
    assert encode(siqa, ex, tok, 70)["input_ids"][0] == _encode_pairs(tok, plain, 70)["input_ids"]


# ---------------------------------------------------------------- 6. truncation

def _words(n: int) -> str:
    return " ".join(["the"] * n)


# (tokens of A, tokens of B) -> jiant's lengths: each cut to 254 on its own, no cap on the total
TRUNCATION = [(10, 10), (300, 10), (10, 300), (200, 200), (300, 300), (254, 254), (255, 1)]


@pytest.mark.parametrize("la,lb", TRUNCATION)
def test_each_segment_is_cut_on_its_own(la, lb, tokenizers, tmp_path):
    from stilts_tui.tasks.base import ClsExample

    tok = tokenizers["roberta"]
    assert len(tok.tokenize(_words(7))) == 7  # one token a word
    ex = [ClsExample(_words(la), _words(lb), 0)]
    ids = encode(get_task("rte"), ex, tok, MAX_SEQ_LEN, inputs="jiant")["input_ids"][0]
    j = Jiant(tok)
    assert ids == j.ids(j.tt(_words(la)), j.tt(_words(lb)))
    assert len(ids) == min(la, 254) + min(lb, 254) + 4
    reference = encode(get_task("rte"), ex, tok, MAX_SEQ_LEN)["input_ids"][0]
    assert len(reference) == min(la + lb + 4, MAX_SEQ_LEN)


# ---------------------------------------------------------------- 7. ReCoRD's epoch

def test_record_counts_its_epoch_per_passage(raw_data):
    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.tasks.jiant_inputs import epoch_examples
    from stilts_tui.train.steps import epoch_rows

    record = get_task("record")
    ex = load_examples(record, "train", str(raw_data))
    # qa.py l. 360-366: count_examples = sum(len(d["passage"]["entities"]) for d in data)
    jiant_count = sum(len(d["passage"]["entities"]) for d in [RECORD])
    assert len(ex) == 4 and epoch_examples(record, ex) == jiant_count == 2
    cfg = RunConfig(kind="target", model="m", task="record", inputs="jiant")
    assert epoch_rows(cfg, record, len(ex), ex) == 2
    cfg.inputs = "reference"
    assert epoch_rows(cfg, record, len(ex), ex) == 4
    multirc = get_task("multirc")
    mex = load_examples(multirc, "train", str(raw_data))
    assert epoch_examples(multirc, mex) == len(mex) == 2  # count_examples: every answer


def test_multirc_passages_are_cut_to_254_tokens_not_windowed(tokenizers):
    from stilts_tui.tasks.base import CandidateExample, Pieces

    tok = tokenizers["roberta"]
    long = _words(600)
    ex = [CandidateExample(long, Pieces("where did the cat sit ?", "the mat"), 1, "0-0", "the mat")]
    jiant = encode(get_task("multirc"), ex, tok, MAX_SEQ_LEN, inputs="jiant")
    j = Jiant(tok)
    assert jiant["input_ids"] == [j.ids(j.tt(long), j.tt("where did the cat sit ?") + j.tt("the mat"))]
    assert jiant["labels"] == [1]
    windows = encode(get_task("multirc"), ex, tok, MAX_SEQ_LEN)
    assert len(windows["input_ids"]) > 1  # the reference inputs: windows over the passage


# ---------------------------------------------------------------- 8. edge probing

def test_edge_probing_targets_past_256_tokens_are_kept(tokenizers):
    from stilts_tui.tasks.base import SpanExample, SpanTarget

    tok = tokenizers["roberta"]
    words = tuple(["the"] * 400)
    ex = [SpanExample(words, (SpanTarget((350, 351), None, (0,)), SpanTarget((5, 6), None, (0,))))]
    pos = get_task("edges_pos")
    jiant = encode(pos, ex, tok, MAX_SEQ_LEN, inputs="jiant")
    assert jiant["truncated_targets"] == [0] and len(jiant["input_ids"][0]) == 402
    assert jiant["spans1"][0] == [[351, 351], [6, 6]]  # word w is token w + 1 after <s>
    reference = encode(pos, ex, tok, MAX_SEQ_LEN)
    assert reference["truncated_targets"] == [1]


# ---------------------------------------------------------------- 9. ScalarMix

def test_scalar_mix_has_one_parameter_per_layer_and_bert_adam_clips_each():
    import torch

    from stilts_tui.train.heads import ScalarMix
    from stilts_tui.train.optim import build_optimizer

    mix = ScalarMix(3)
    # allennlp/modules/scalar_mix.py l. 32-36: a ParameterList of [1]-shaped scalars, then gamma
    assert [tuple(p.shape) for p in mix.parameters()] == [(1,), (1,), (1,), (1,)]
    opt = build_optimizer("bert_adam", list(mix.scalar_parameters), lr=1.0, eps=1e-6, weight_decay=0.0, fused=False)
    grads = [3.0, -0.5, 2.0]
    for p, g in zip(mix.scalar_parameters, grads, strict=True):
        p.grad = torch.tensor([g])
    opt.step()
    # BertAdam: clip_grad_norm_(p, 1.0) per tensor, next_m = 0.1 * grad: each scalar clipped alone
    per_tensor = [max(-1.0, min(1.0, g)) if abs(g) > 1 else g for g in grads]
    m = [float(opt.state[p]["next_m"]) for p in mix.scalar_parameters]
    assert m == pytest.approx([0.1 * g for g in per_tensor], rel=1e-4)
    norm = sum(g * g for g in grads) ** 0.5  # one 3-element tensor would have been clipped as a whole
    assert m != pytest.approx([0.1 * g / norm for g in grads], rel=1e-3)


def test_plan_counts_records_epoch_from_the_data(raw_data):
    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.sweep.resolved import resolve

    def row(inputs: str) -> dict:
        cfg = RunConfig(kind="target", model="m", task="record", data_dir=str(raw_data), inputs=inputs, batch_size=1,
                        epochs=3, run_id="r")
        return resolve([cfg], set())[0]

    assert row("jiant")["total_steps"] == 3 * 2  # 2 entities in the one passage, though 2 queries make 4 rows
    assert row("reference")["total_steps"] == 3 * get_task("record").train_rows


@pytest.mark.parametrize("task", ["rte", "copa", "socialiqa"])
def test_a_bert_style_tokenizer_gets_its_own_boundary_tokens(task, raw_data, tokenizers):
    """BERT's apply_boundary_tokens (pytorch_transformers_interface/modules.py l. 278-288): [CLS] A [SEP] B [SEP],
    segment ids 0 then 1 (the encoder's post-processor supplies them)."""
    tok = tokenizers["bert"]
    t = get_task(task)
    features = encode(t, load_examples(t, "dev", str(raw_data)), tok, MAX_SEQ_LEN, inputs="jiant")
    tt = Jiant(tok).tt
    if task == "rte":
        a, bs = tt(MNLI[0]), [tt(MNLI[1])]
    elif task == "copa":
        a, bs = tt(COPA["premise"]), [tt("What happened as a result?") + tt(COPA[c]) for c in ("choice1", "choice2")]
    else:
        a, bs = tt(SIQA["context"]), [tt(SIQA["question"]) + tt(SIQA[f"answer{c}"]) for c in "ABC"]
    want = [tok.convert_tokens_to_ids(["[CLS]"] + a + ["[SEP]"] + b + ["[SEP]"]) for b in bs]
    types = [[0] * (len(a) + 2) + [1] * (len(b) + 1) for b in bs]
    got = features["input_ids"][0] if t.head == "multiple_choice" else features["input_ids"]
    got_types = features["token_type_ids"][0] if t.head == "multiple_choice" else features["token_type_ids"]
    assert got == want and got_types == types
