"""What a warm worker keeps in host memory between runs: tokenizers, tokenised splits, base
weights and intermediate checkpoints. Every getter returns exactly what the cold path builds,
so a run's result does not depend on which worker ran it (tested)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from stilts_tui.train.checkpoint import load_checkpoint_state


class WarmCache:
    def __init__(self, max_states: int = 3) -> None:
        self.tokenizers: dict[str, object] = {}
        self.splits: dict[tuple, tuple] = {}
        self.states: OrderedDict[tuple, dict[str, torch.Tensor]] = OrderedDict()
        self.max_states = max_states
        self.hits = 0

    def tokenizer(self, path: str):
        if path not in self.tokenizers:
            from transformers import AutoTokenizer

            self.tokenizers[path] = AutoTokenizer.from_pretrained(path)
        else:
            self.hits += 1
        return self.tokenizers[path]

    def split(self, key: tuple, build):
        if key not in self.splits:
            self.splits[key] = build()
        else:
            self.hits += 1
        return self.splits[key]

    def state(self, folder: str | Path) -> dict[str, torch.Tensor] | None:
        """The safetensors weights of a local model folder (None for hub ids): read once, then
        served from memory while the files are unchanged."""
        folder = Path(folder)
        files = sorted(folder.glob("model*.safetensors")) if folder.is_dir() else []
        if not files:
            return None
        key = (str(folder.resolve()), tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files))
        if key in self.states:
            self.states.move_to_end(key)
            self.hits += 1
            return self.states[key]
        state = load_checkpoint_state(folder)
        self.states[key] = state
        while len(self.states) > self.max_states:
            self.states.popitem(last=False)
        return state
