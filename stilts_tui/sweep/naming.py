"""A user's name (a spec's, a sweep's) as part of a file name: the one rule for both."""

from __future__ import annotations

import re


def slug(name: str, fallback: str = "spec", max_len: int = 60) -> str:
    """Letters, digits, `.`, `_` and `-`; every other run of characters one `-`; never empty, never
    a hidden file or a path."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:max_len].strip("-.") or fallback
