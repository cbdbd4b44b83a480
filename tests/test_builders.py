"""Data builders: HellaSwag-p, Hella-sh, Synthesis_GPT2 (tiny random GPT-2), subsample."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import CORPUS

from stilts_tui.data import hellaswag, subsample, synthesis
from stilts_tui.errors import StiltsError
from stilts_tui.tasks import get_task, load_examples


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_hellaswag_p_removes_the_premise(official_data, tmp_path):
    counts = hellaswag.build("hellaswag-p", official_data / "hellaswag", tmp_path / "hp")
    assert counts == {"train": 2, "dev": 2}
    rows = _rows(tmp_path / "hp" / "train.jsonl")
    assert all(r["ctx_a"] == "" and r["ctx_b"] == "" for r in rows)
    ex = load_examples(get_task("hellaswag_p"), "train", tmp_path / "hp")
    assert ex[0].choices[0] == ("removes the ice from the roof .", None)


def test_hella_sh_shuffles_only_wrong_endings_deterministically(official_data, tmp_path):
    hellaswag.build("hella-sh", official_data / "hellaswag", tmp_path / "a", seed=7)
    hellaswag.build("hella-sh", official_data / "hellaswag", tmp_path / "b", seed=7)
    hellaswag.build("hella-sh", official_data / "hellaswag", tmp_path / "c", seed=8)
    a, b, c = (_rows(tmp_path / x / "train.jsonl") for x in "abc")
    assert a == b
    assert a != c
    original = _rows(official_data / "hellaswag" / "hellaswag_train.jsonl")
    for new, old in zip(a, original, strict=True):
        label = old["label"]
        assert new["endings"][label] == old["endings"][label]
        assert new["ctx_a"] == old["ctx_a"] and new["ctx_b"] == old["ctx_b"]
        for i in range(4):
            assert sorted(new["endings"][i].split()) == sorted(old["endings"][i].split())
    assert any(n["endings"][i] != o["endings"][i] for n, o in zip(a, original, strict=True) for i in range(4))
    loaded = load_examples(get_task("hella_sh"), "train", tmp_path / "a")
    assert loaded[0].choices[0][0] == "A man is standing on a roof."


def test_hella_sh_needs_building(tmp_path):
    with pytest.raises(StiltsError, match="stilts build-data hella-sh"):
        load_examples(get_task("hella_sh"), "train", tmp_path)


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    from stilts_tui.models.tiny import build_tokenizer

    out = tmp_path_factory.mktemp("gpt2")
    rob = build_tokenizer("roberta", out / "tok", CORPUS)
    tok = GPT2TokenizerFast(tokenizer_object=rob.backend_tokenizer, eos_token="</s>", bos_token="<s>", unk_token="<unk>")
    tok.save_pretrained(out)
    cfg = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=128,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    GPT2LMHeadModel(cfg).save_pretrained(out)
    return out


def _paragraphs(path: Path, n: int = 9, tag: str = "w") -> Path:
    vocab = " ".join(CORPUS).replace(" .", "").replace(" ,", "").split()  # words the tiny tokenizer knows
    shift = 7 if tag == "v" else 0
    sentences = [" ".join(vocab[(shift + 3 * i + j) % len(vocab)] for j in range(22 + i % 10)) for i in range(n)]
    paras = [{"context": ". ".join(sentences[i : i + 3]) + "."} for i in range(0, n, 3)]
    squad = {"data": [{"title": "t", "paragraphs": paras}]}
    path.write_text(json.dumps(squad))
    return path


def _words(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(1, n + 1)]


def test_synthesis_sentences_are_the_reference_premises_and_endings(tmp_path):
    a, b, c, d = _words("a", 25), _words("b", 35), _words("c", 20), _words("d", 12) + ["x!"] + _words("e", 11)
    para = ". ".join([" ".join(a), " ".join(b), "Too short here", " ".join(d)]) + ". " + " ".join(c) + "."
    src = tmp_path / "squad.json"
    src.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": para}, {"context": para}]}]}))
    expected = [
        (" ".join(a[:12]), " ".join(a[12:24])),          # 25 words: halves of 12 / 13, last word dropped
        (" ".join(b[:15]), " ".join(b[15:29])),          # first 30 words only, then the last dropped
        (" ".join(d[:12]), " ".join(d[12:23])),          # "x!" does not end a piece: only ". " splits
        (" ".join(c[:10]), " ".join(c[10:19])),          # the paragraph's last piece keeps "c20." as its last word
    ] * 2                                                # no de-duplication: the repeated paragraph counts twice
    assert synthesis.sentence_pairs(synthesis.read_paragraphs(src)) == expected
    shuffled = list(expected)
    random.seed(42)               # run_gpt2_synth_dataset.py: set_seed(42), get_data, random.shuffle, [:30000]
    random.shuffle(shuffled)
    assert synthesis.shuffled_pairs(src) == shuffled != expected
    assert synthesis.shuffled_pairs(src, n=3) == shuffled[:3]


def test_synthesis_generates_with_a_tiny_gpt2_and_resumes(tiny_gpt2, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    src, dev = _paragraphs(tmp_path / "train.json"), _paragraphs(tmp_path / "dev.json", n=6, tag="v")
    kw = {"model_name": str(tiny_gpt2), "batch_size": 2, "seed": 3, "device": "cpu", "progress": False}
    full = synthesis.build(src, tmp_path / "full", dev_source=dev, n=7, **kw)
    assert full == {"train": 7, "dev": 6}
    tok = AutoTokenizer.from_pretrained(tiny_gpt2)

    def round_trip(text: str) -> str:
        return synthesis.clean_up_tokenization(tok.decode(tok.encode(text, add_special_tokens=False)))

    positions = set()
    for split, source, n in (("train", src, 7), ("dev", dev, 6)):
        rows = _rows(tmp_path / "full" / f"{split}.jsonl")
        pairs = synthesis.shuffled_pairs(source, n)
        assert [r["ctx"] for r in rows] == [round_trip(p) for p, _ in pairs]  # the seed-42 order, kept
        for r, (_, true) in zip(rows, pairs, strict=True):
            assert len(r["endings"]) == 4
            assert r["endings"][r["label"]] == round_trip(true)
            limit = len(tok.encode(true, add_special_tokens=False))
            fakes = [e for i, e in enumerate(r["endings"]) if i != r["label"]]
            assert all(len(f.split()) <= limit for f in fakes)  # at most as many tokens as the true ending
            assert any(f for f in fakes)
            positions.add(r["label"])
    assert len(positions) > 1  # the true ending is not always in the same place
    assert load_examples(get_task("synthesis_gpt2"), "train", tmp_path / "full")

    # Interrupt after two batches, then resume: the same files as the uninterrupted build.
    real = synthesis._generate
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synthesis, "_generate", flaky)
    with pytest.raises(KeyboardInterrupt):
        synthesis.build(src, tmp_path / "resumed", dev_source=dev, n=7, **kw)
    assert len((tmp_path / "resumed" / "partial-train.jsonl").read_text().splitlines()) == 4
    monkeypatch.setattr(synthesis, "_generate", real)
    synthesis.build(src, tmp_path / "resumed", dev_source=dev, n=7, **kw)
    for split in ("train", "dev"):
        assert _rows(tmp_path / "resumed" / f"{split}.jsonl") == _rows(tmp_path / "full" / f"{split}.jsonl")
    assert not list((tmp_path / "resumed").glob("partial*"))


def test_batched_generation_continues_each_prompt_as_alone(tiny_gpt2):
    """Left padding must not shift positions: greedy continuations in a batch equal one-at-a-time ones,
    which is what lets batched sampling follow the reference's one-prompt distribution."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_gpt2)
    tok.padding_side = "left"
    tok.pad_token = tok.pad_token or tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval()
    prompts = ["the quick brown fox jumps over the lazy dog", "a man"]

    def greedy(texts):
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**enc, do_sample=False, max_new_tokens=6, pad_token_id=tok.pad_token_id)
        return out[:, enc["input_ids"].shape[1] :].tolist()

    assert greedy(prompts) == greedy(prompts[:1]) + greedy(prompts[1:])


def test_synthesis_without_weights_is_a_clear_error(tmp_path):
    src = _paragraphs(tmp_path / "s.json")
    with pytest.raises(StiltsError, match="cannot load the generator"):
        synthesis.build(src, tmp_path / "o", dev_source=src, model_name=str(tmp_path / "no-such-model"), progress=False)


def test_subsample_is_reproducible(tmp_path):
    src = tmp_path / "train.tsv"
    src.write_text("index\ts\n" + "".join(f"{i}\tx{i}\n" for i in range(100)))
    subsample.subsample_file(src, tmp_path / "a.tsv", 10, seed=1, header=True)
    subsample.subsample_file(src, tmp_path / "b.tsv", 10, seed=1, header=True)
    subsample.subsample_file(src, tmp_path / "c.tsv", 10, seed=2, header=True)
    a = (tmp_path / "a.tsv").read_text().splitlines()
    assert a == (tmp_path / "b.tsv").read_text().splitlines()
    assert a != (tmp_path / "c.tsv").read_text().splitlines()
    assert a[0] == "index\ts" and len(a) == 11
    idx = [int(x.split("\t")[0]) for x in a[1:]]
    assert idx == sorted(idx) and idx == subsample.subsample_indices(100, 10, 1)
    assert subsample.subsample_indices(5, 10, 1) == [0, 1, 2, 3, 4]


def test_subsample_keeps_labels_aligned(tmp_path):
    src, lab = tmp_path / "t.jsonl", tmp_path / "t.lst"
    src.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(50)))
    lab.write_text("".join(f"{i}\n" for i in range(50)))
    subsample.subsample_file(src, tmp_path / "o.jsonl", 7, seed=0, labels=(lab, tmp_path / "o.lst"))
    kept = [json.loads(x)["i"] for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert kept == [int(x) for x in (tmp_path / "o.lst").read_text().split()]


@pytest.mark.parametrize("where", ["/dev/zero", "folder"])
def test_builder_inputs_that_are_not_regular_files_say_what_they_are(tmp_path, where):
    """`stilts build-data subsample /dev/zero` said "file not found" (and a paragraphs file the same):
    what the path is instead is said, and it is never read (/dev/zero never ends)."""
    from stilts_tui.errors import DataError

    src = Path(where) if where.startswith("/") else tmp_path / where
    if where == "folder":
        src.mkdir()
    kind = "a character device" if where.startswith("/") else "a directory"
    with pytest.raises(DataError) as err:
        subsample.subsample_file(src, tmp_path / "o.tsv", 10, seed=1)
    assert err.value.problem == f"{src}: is not a regular file ({kind})"
    with pytest.raises(DataError) as err:
        list(synthesis.read_paragraphs(src))
    assert err.value.problem == f"{src}: is not a regular file ({kind})"
    assert not (tmp_path / "o.tsv").exists()


def test_builder_inputs_read_lines_with_the_bound(tmp_path, monkeypatch):
    from stilts_tui.errors import DataError
    from stilts_tui.tasks import formats

    monkeypatch.setattr(formats, "MAX_LINE_CHARS", 40, raising=False)
    src = tmp_path / "t.txt"
    src.write_text("short\n" + "w " * 50 + "\nshort\n")
    with pytest.raises(DataError) as err:
        subsample.subsample_file(src, tmp_path / "o.txt", 1, seed=1)
    assert err.value.problem == f"{src}, line 2: line longer than the limit of 40 characters"
    with pytest.raises(DataError) as err:
        list(synthesis.read_paragraphs(src))
    assert err.value.line == 2 and "limit of 40 characters" in err.value.problem
    assert not (tmp_path / "o.txt").exists()
