"""Flat records out as JSON or CSV at full precision (floats by repr, so they read back exactly)."""

from __future__ import annotations

import csv
import io
import json


def flat_records(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else [], extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()} for r in rows)
    return buf.getvalue()
