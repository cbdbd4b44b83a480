"""Rendering results: the pair table (scores x100 in the table, as in the paper; JSON and CSV keep
the metric's own 0-1 scale) and one row per run."""

from __future__ import annotations

import csv
import io
import json

from stilts_tui.analysis.stats import is_degenerate, pair_stats

RUN_FIELDS = ("run_id", "kind", "intermediate", "target", "lr", "batch_size", "warmup_ratio", "seed", "epochs",
              "max_length", "train_size", "status", "score", "metric", "degenerate", "reason", "wall_s", "attempts")
PAIR_FIELDS = ("intermediate", "target", "metric", "n", "min", "mean", "median", "best", "std", "degenerate",
               "failed", "pending")


def run_rows(records: list[dict]) -> list[dict]:
    rows = []
    for r in sorted(records, key=lambda r: (r.get("kind") != "intermediate", r.get("target", ""), r.get("intermediate", ""),
                                            r.get("lr", 0), r.get("batch_size", 0), r.get("warmup_ratio", 0), r.get("seed", 0))):
        row = {k: r.get(k) for k in RUN_FIELDS if k != "degenerate"}
        row["degenerate"] = is_degenerate(r) if r.get("status") == "finished" else None
        rows.append(row)
    return rows


def _x100(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}"


def render_results(records: list[dict], fmt: str = "table", runs: bool = False) -> str:
    rows = run_rows(records) if runs else [p.as_dict() for p in pair_stats(records)]
    fields = RUN_FIELDS if runs else PAIR_FIELDS
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()
    from rich.console import Console
    from rich.table import Table

    if runs:
        table = Table(title=f"{len(rows)} runs")
        for c in ("run", "pair", "lr", "bs", "warmup", "seed", "status", "score"):
            table.add_column(c, justify="right" if c in ("lr", "bs", "warmup", "seed", "score") else "left")
        for r in rows:
            pair = f"{r['intermediate']} → {r['target']}" if r["kind"] != "intermediate" else f"[{r['intermediate']}]"
            status = r["status"] + (f" ({r['reason']})" if r.get("reason") and r["status"] != "finished" else "")
            table.add_row(r["run_id"], pair + (" 0-shot" if r["kind"] == "zero_shot" else ""), f"{r['lr']:g}",
                          str(r["batch_size"]), f"{r['warmup_ratio']:g}", str(r["seed"]), status, _x100(r["score"]))
    else:
        table = Table(title="dev scores ×100 per (intermediate, target)")
        for c in ("target", "intermediate", "metric", "runs", "min", "mean", "best", "std", "degenerate", "failed"):
            table.add_column(c, justify="left" if c in ("target", "intermediate", "metric") else "right")
        for p in rows:
            table.add_row(p["target"], p["intermediate"], p["metric"], str(p["n"]) + (f" (+{p['pending']} to run)" if p["pending"] else ""),
                          _x100(p["min"]), _x100(p["mean"]), _x100(p["best"]), _x100(p["std"]), str(p["degenerate"]),
                          str(p["failed"]))
        if not rows:
            return "no target runs in the results file yet\n"
    buf = io.StringIO()
    Console(file=buf, width=120, force_terminal=False).print(table)
    return buf.getvalue()
