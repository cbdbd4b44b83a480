"""Tiny randomly initialised encoders with tokenizers trained offline: fast stand-ins for
RoBERTa and BERT in tests and benchmarks (no hub access needed)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

_DEFAULT_CORPUS = (
    "the quick brown fox jumps over the lazy dog . a man is playing a guitar on stage .",
    "she said that the weather would be fine tomorrow , but it rained all day .",
    "the committee approved the new budget after a long debate about schools and roads .",
    "he opened the door , looked outside and went back to bed because it was too early .",
)


def build_tokenizer(kind: str, out: Path, corpus: Iterable[str] = _DEFAULT_CORPUS, vocab_size: int = 400):
    """A RoBERTa-style byte-level BPE or a BERT-style WordPiece tokenizer, saved to ``out``."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import BertTokenizerFast, RobertaTokenizerFast  # type: ignore[attr-defined]  # lazy exports

    texts = list(corpus)
    out.mkdir(parents=True, exist_ok=True)
    if kind == "roberta":
        special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(texts, trainer)
        sep, cls = tok.token_to_id("</s>"), tok.token_to_id("<s>")
        assert sep is not None and cls is not None  # both were trained in as special tokens
        tok.post_processor = processors.RobertaProcessing(("</s>", sep), ("<s>", cls))
        fast = RobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                    cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    elif kind == "bert":
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special))
        cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
        fast = BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                                 cls_token="[CLS]", mask_token="[MASK]")
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}")
    fast.save_pretrained(out)
    return fast


def build_tiny_model(out: Path, kind: str = "roberta", corpus: Iterable[str] = _DEFAULT_CORPUS,
                     hidden: int = 64, layers: int = 2, heads: int = 2, seed: int = 0, dropout: float = 0.1,
                     vocab_size: int = 400, max_positions: int = 256) -> Path:
    """Save a tiny random encoder (+ tokenizer) that `from_pretrained` loads like a real one."""
    import torch
    from transformers import BertConfig, BertModel, PreTrainedModel, RobertaConfig, RobertaModel

    tok = build_tokenizer(kind, out, corpus, vocab_size)
    common = dict(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  intermediate_size=hidden * 4, max_position_embeddings=max_positions + 2, pad_token_id=tok.pad_token_id,
                  hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    torch.manual_seed(seed)
    model: PreTrainedModel
    if kind == "roberta":
        model = RobertaModel(RobertaConfig(**common, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, type_vocab_size=1))
    else:
        model = BertModel(BertConfig(**common))
    model.save_pretrained(out)
    return out
