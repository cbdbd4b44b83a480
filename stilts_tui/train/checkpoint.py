"""Reading a saved model's weights (one safetensors file, or shards with an index): used by the
hand-off and by the warm worker's cache."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from stilts_tui.errors import StiltsError


def load_checkpoint_state(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    single = folder / "model.safetensors"
    if single.is_file():
        return load_file(str(single))
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        state: dict[str, torch.Tensor] = {}
        for shard in sorted(set(json.loads(index.read_text())["weight_map"].values())):
            state.update(load_file(str(folder / shard)))
        return state
    raise StiltsError(f"intermediate checkpoint {folder} has no model.safetensors", "re-run the intermediate task")
