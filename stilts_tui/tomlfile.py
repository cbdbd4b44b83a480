"""Reading the TOML files users write (specs, task definitions) as data, with clear errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

from stilts_tui.errors import SpecError


def read_toml(path: Path, what: str, example: str) -> dict:
    """The parsed file; a missing file or bad syntax is one message naming the file."""
    if not path.is_file():
        raise SpecError(f"{what} {path} not found", f"give the path of a TOML {what}, e.g. {example}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})", "fix the TOML syntax at the position shown") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not UTF-8 text", "save the file as UTF-8") from None
