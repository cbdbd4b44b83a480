"""The second study's heads (span QA, tagging, span classification, per-candidate scoring, WiC's
word vectors): each task read from a tiny fixture in its official format, each head checked against
a hand-computed case, the metrics against the official SuperGLUE scoring, and a real tiny run per head."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from stilts_tui.bench.head_data import write_head_data
from stilts_tui.errors import StiltsError
from stilts_tui.tasks import get_task, load_examples, with_label_set
from stilts_tui.tasks.base import (
    CandidateExample,
    SpanExample,
    SpanQAExample,
    SpanVectorExample,
    TaggingExample,
)
from stilts_tui.tasks.encode_heads import (
    IGNORE,
    encode_span_qa,
    encode_spans,
    encode_tagging,
    word_starts,
)
from stilts_tui.tasks.head_metrics import micro_f1, multirc, record, squad_f1_em
from stilts_tui.tasks.metrics import baseline_score, degenerate_threshold


@pytest.fixture(scope="module")
def heads_data(tmp_path_factory) -> Path:
    return write_head_data(tmp_path_factory.mktemp("heads"))


def test_tasks_read_their_official_formats(heads_data):
    multirc_ex = load_examples(get_task("multirc"), "train", heads_data)
    assert [(c.b, c.label, c.group) for c in multirc_ex] == [
        ("Where did the cat sit? On the mat", 1, "0-0"), ("Where did the cat sit? In the car", 0, "0-0"),
        ("Was it cold? No", 1, "0-1"), ("Was it cold? Yes", 0, "0-1")]
    rec = load_examples(get_task("record"), "dev", heads_data)
    assert [(c.candidate, c.label) for c in rec] == [("Paris", 1), ("France", 0), ("Berlin", 0), ("Germany", 0)]
    assert rec[0].b == "Paris is a city in France." and rec[0].golds == ("Paris",)
    wsc = load_examples(get_task("wsc"), "train", heads_data)
    assert isinstance(wsc[1], SpanExample) and wsc[1].targets[0].span1 == (0, 2) and wsc[1].targets[0].labels == (1,)
    wic = load_examples(get_task("wic_span"), "train", heads_data)[0]
    assert isinstance(wic, SpanVectorExample) and wic.a[slice(*wic.span_a)] == "bank" == wic.b[slice(*wic.span_b)]
    qasrl = load_examples(get_task("qasrl"), "train", heads_data)
    assert [(q.question, q.answer) for q in qasrl] == [("What chased something?", "The dog"),
                                                      ("What did something chase?", "the red ball")]
    assert all(q.context[q.answer_start:].startswith(q.answer) for q in qasrl)
    qamr = load_examples(get_task("qamr"), "dev", heads_data)
    assert [(q.answer, q.context[q.answer_start:q.answer_start + len(q.answer)]) for q in qamr] == [
        ("old man", "old man"), ("in the park", "in the park")]
    spr = load_examples(get_task("edges_spr2"), "train", heads_data)
    assert len(spr) == 2  # a record without targets is skipped, as jiant does
    assert spr[0].targets[0].labels == (0, 2) and spr[0].targets[1].span2 == (3, 5)
    assert with_label_set(get_task("edges_spr2"), heads_data).num_labels == 3
    ccg = load_examples(get_task("ccg"), "train", heads_data)
    assert ccg == [TaggingExample(("The", "dog", "barked"), (3, 7, 12)), TaggingExample(("Cats", "sleep"), (7, 12))]


def test_licensed_data_missing_names_the_source_and_layout(tmp_path):
    with pytest.raises(StiltsError) as err:
        load_examples(get_task("edges_ner"), "train", tmp_path)
    assert "OntoNotes 5.0 (LDC2013T19)" in str(err.value) and "edges/ontonotes/ner" in str(err.value)
    assert "development.json" in str(err.value)
    with pytest.raises(StiltsError, match=r"CCGbank.*licensed"):
        load_examples(get_task("ccg"), "train", tmp_path)
    with pytest.raises(StiltsError, match="no data here"):
        load_examples(get_task("edges_srl"), "train", None)


def test_span_answer_decodes_back_to_its_characters(tiny_models):
    from transformers import AutoTokenizer

    from stilts_tui.train.predict import best_span

    tok = AutoTokenizer.from_pretrained(tiny_models["bert"])
    context = "the cat sat on the mat because the mat was warm"
    ex = SpanQAExample(context, "where did the cat sit ?", context.index("the mat"), "the mat", ("the mat",))
    enc = encode_span_qa([ex], tok, 64)
    s, e = enc["start_positions"][0], enc["end_positions"][0]
    offsets = enc["context_offsets"][0]
    assert context[offsets[s][0]:offsets[e][1]] == "the mat"
    logits = torch.zeros(len(offsets), 2)
    logits[s, 0] = logits[e, 1] = 5.0
    assert best_span(logits, offsets)[1:] == (offsets[s][0], offsets[e][1])
    # A context longer than the budget: several overlapping windows, the answer found in one of them.
    long_ctx = " ".join(["the cat sat on the mat"] * 30) + " and the dog ran"
    far = SpanQAExample(long_ctx, "who ran ?", long_ctx.index("the dog"), "the dog", ("the dog",))
    enc = encode_span_qa([far], tok, 48)
    assert len(enc["row_example"]) > 3 and set(enc["row_example"]) == {0}
    found = [i for i, s in enumerate(enc["start_positions"]) if s]
    assert found and all(max(len(r) for r in enc["input_ids"]) <= 48 for _ in found)
    i = found[0]
    o = enc["context_offsets"][i]
    assert long_ctx[o[enc["start_positions"][i]][0]:o[enc["end_positions"][i]][1]] == "the dog"


def test_tags_align_to_each_words_first_piece(tiny_models):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_models["roberta"])
    words = ("unbelievably", "the", "catalogue", "sat")
    enc = encode_tagging([TaggingExample(words, (4, 5, 6, 7))], tok, 64)
    labels = enc["labels"][0]
    assert [y for y in labels if y != IGNORE] == [4, 5, 6, 7]
    text, starts = word_starts(words)
    offsets = tok(text, return_offsets_mapping=True)["offset_mapping"]
    firsts = [j for j, y in enumerate(labels) if y != IGNORE]
    assert [offsets[j][0] for j in firsts] == starts  # each tag sits on the piece that starts its word
    # A sentence over the budget becomes chunks of whole words; every word is tagged exactly once.
    long = tuple(["unbelievably", "catalogue"] * 20)
    chunks = encode_tagging([TaggingExample(long, tuple(range(40)))], tok, 24)
    assert len(chunks["row_example"]) > 1
    assert [y for row in chunks["labels"] for y in row if y != IGNORE] == list(range(40))


def test_span_pooling_attends_only_inside_each_span():
    from stilts_tui.train.heads import SelfAttentiveSpan

    pool = SelfAttentiveSpan(2)
    torch.nn.init.zeros_(pool.attention.weight)
    torch.nn.init.zeros_(pool.attention.bias)  # equal attention logits: the span's mean
    seq = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [5.0, 4.0], [100.0, 100.0]]])
    spans = torch.tensor([[[1, 2], [0, 0], [-1, -1]]])
    out = pool(seq, spans)
    assert torch.allclose(out[0, 0], torch.tensor([4.0, 3.0]))
    assert torch.allclose(out[0, 1], torch.tensor([1.0, 0.0]))
    assert torch.equal(out[0, 2], torch.zeros(2))  # a padded target pools nothing
    pool.attention.weight.data = torch.tensor([[1.0, 0.0]])  # softmax over the span's tokens only
    w = torch.softmax(torch.tensor([3.0, 5.0]), 0)
    assert torch.allclose(pool(seq, spans)[0, 0], w[0] * seq[0, 1] + w[1] * seq[0, 2])


def test_span_targets_map_to_tokens_and_cut_targets_are_counted(tiny_models):
    from dataclasses import replace

    from transformers import AutoTokenizer

    from stilts_tui.tasks.base import SpanTarget

    spr = replace(get_task("edges_spr2"), labels=("a", "b", "c"))
    tok = AutoTokenizer.from_pretrained(tiny_models["bert"])
    words = ("alice", "gave", "bob", "a", "book") + ("filler",) * 40
    ex = SpanExample(words, (SpanTarget((1, 2), (0, 1), (0, 2)), SpanTarget((44, 45), (0, 1), (1,))))
    enc = encode_spans([ex], tok, 24, spr)
    assert enc["target_ids"] == [[0]] and enc["truncated_targets"] == [1]
    ids = enc["input_ids"][0]
    s, e = enc["spans1"][0][0]
    assert tok.decode(ids[s:e + 1]).replace(" ", "") == "gave"
    assert enc["span_labels"][0] == [[1, 0, 1]]


def test_multirc_and_record_metrics_match_the_superglue_scoring():
    # MultiRC (SuperGLUE's scorer: F1a over all options, EM per question): two questions, 5 options.
    preds, labels, groups = [1, 0, 1, 1, 0], [1, 0, 0, 1, 0], ["q1", "q1", "q1", "q2", "q2"]
    out = multirc(preds, labels, groups)
    # F1a: tp 2, predicted 3, actual 2 -> P 2/3, R 1 -> 0.8; EM: q1 wrong, q2 right -> 0.5
    assert out["f1a"] == pytest.approx(0.8) and out["em"] == 0.5 and out["score"] == pytest.approx(0.65)
    # ReCoRD: the best-scored entity per query; F1 / EM the best over its answers, normalised.
    out = record([0.1, 0.9, 0.3, 0.2], ["Paris", "the Berlin Wall", "London", "Rome"], ["a", "a", "b", "b"],
                 [("Paris",), ("Paris",), ("London Town", "london"), ("London Town", "london")])
    # a: "the Berlin Wall" vs "Paris": 0 / 0; b: "London" vs "london": EM 1, F1 1
    assert out == {"f1": 0.5, "em": 0.5, "score": 0.5}
    assert squad_f1_em(["the cat sat"], [["a cat sat down"]])["f1"] == pytest.approx(2 * (2 / 2) * (2 / 3) / (1 + 2 / 3))
    assert micro_f1([[0, 1], []], [[0], [1]], 3)["score"] == pytest.approx(2 * 0.5 * 0.5 / 1.0)


def test_baselines_of_the_span_heads(heads_data):
    wsc = get_task("wsc")
    dev = load_examples(wsc, "dev", heads_data)
    assert baseline_score(wsc, dev, "majority") == 0.5 == degenerate_threshold(wsc, dev)
    multirc_task = get_task("multirc")
    dev = load_examples(multirc_task, "dev", heads_data)
    # all-right: F1a 2/3, EM 0; all-wrong: F1a 0, EM 0 -> 1/3
    assert baseline_score(multirc_task, dev, "majority") == pytest.approx(1 / 3)
    qa = get_task("qasrl")
    assert baseline_score(qa, load_examples(qa, "dev", heads_data), "majority") == 0.0
    assert isinstance(load_examples(multirc_task, "dev", heads_data)[0], CandidateExample)


@pytest.mark.parametrize("task", ["multirc", "record", "wsc", "wic_span", "qasrl", "qamr", "edges_spr2", "ccg"])
def test_the_worker_trains_and_scores_each_head(task, tiny_models, heads_data, tmp_path):
    """A real (tiny) run per head: trained, its best weights saved as an intermediate, scored on dev
    with the task's own metric."""
    from stilts_tui.domain.events import parse_event
    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.train.events import EventWriter
    from stilts_tui.train.loop import run

    cfg = RunConfig(kind="intermediate", model=str(tiny_models["bert"]), task=task, data_dir=str(heads_data), lr=1e-3,
                    batch_size=2, epochs=2, max_length=48, seed=1, cache_dir=str(tmp_path / "cache"),
                    output_dir=str(tmp_path / "out"), log_interval_s=0, dropout=0.1)
    cfg.run_id = cfg.compute_id()
    buf = io.StringIO()
    metrics = run(cfg, EventWriter(cfg.run_id, None, buf))
    events = [e for e in map(parse_event, buf.getvalue().splitlines()) if e]
    assert metrics["metric"] == get_task(task).metric and 0.0 <= metrics["score"] <= 1.0
    assert [e["event"] for e in events if e["event"] == "eval"] == ["eval"]
    assert (tmp_path / "out" / "checkpoint" / "model.safetensors").is_file()
    # The hand-off: a target of another head starts from this encoder with a fresh head.
    target = RunConfig(kind="target", model=str(tiny_models["bert"]), task="wic_span", data_dir=str(heads_data),
                       batch_size=2, epochs=1, max_length=48, init_checkpoint=str(tmp_path / "out" / "checkpoint"),
                       output_dir=str(tmp_path / "t"), log_interval_s=0)
    target.run_id = target.compute_id()
    buf = io.StringIO()
    run(target, EventWriter(target.run_id, None, buf))
    handoff = next(e for e in map(parse_event, buf.getvalue().splitlines()) if e and e["event"] == "handoff")
    assert handoff["source"] == "intermediate" and handoff["kept"] == ["encoder"] and handoff["reinitialised"] == ["classifier"]


def test_scalar_mix_weighs_the_layers_by_the_softmax_of_its_scalars():
    from stilts_tui.train.heads import ScalarMix

    mix = ScalarMix(2)
    with torch.no_grad():
        mix.scalar_parameters.copy_(torch.tensor([0.0, float(np.log(3.0))]))  # softmax: 0.25, 0.75
        mix.gamma.fill_(2.0)
    a, b = torch.ones(1, 2, 3), torch.full((1, 2, 3), 5.0)
    assert torch.allclose(mix((a, b)), torch.full((1, 2, 3), 2.0 * (0.25 + 0.75 * 5.0)))


def test_frozen_mix_trains_the_mix_and_head_and_leaves_the_encoder(tiny_models, tmp_path):
    """jiant's mixing probes: the encoder's weights never move; the scalars and the head learn; the
    first-token head projects to 512 before its classifier."""
    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.train.events import EventWriter
    from stilts_tui.train.handoff import build_model
    from stilts_tui.train.loop import run
    from tests.conftest import write_rte_like

    data = write_rte_like(tmp_path / "RTE", 16, seed=4)
    cfg = RunConfig(kind="intermediate", model=str(tiny_models["roberta"]), task="rte", data_dir=str(data), lr=1e-2,
                    batch_size=4, epochs=2, max_length=32, seed=3, transfer="frozen_mix", output_dir=str(tmp_path / "out"),
                    log_interval_s=0, precision="fp32")
    cfg.run_id = cfg.compute_id()
    torch.manual_seed(3)
    before, _ = build_model(cfg.model, get_task("rte"), None, transfer="frozen_mix")
    assert before.head.project.out_features == 512 and not any(p.requires_grad for p in before.roberta.parameters())
    run(cfg, EventWriter(cfg.run_id, None, io.StringIO()))
    from stilts_tui.train.checkpoint import load_checkpoint_state

    after = load_checkpoint_state(tmp_path / "out" / "checkpoint")
    for key, value in before.state_dict().items():
        moved = not torch.equal(value, after[key])
        assert moved == (not key.startswith("roberta.")), key
