"""What `stilts results`, `stilts plot` and `stilts report` print, from the store's records."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stilts_tui.analysis import export
from stilts_tui.analysis.degenerate import degenerate_sources
from stilts_tui.analysis.flat import flat_records
from stilts_tui.analysis.stats import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    PairStats,
    pair_stats,
)
from stilts_tui.analysis.tables import (
    Table,
    figure3_plot,
    figure3_table,
    pair_records,
    pair_table,
    table2,
    table3,
    table4,
)
from stilts_tui.analysis.violin import MAX_COLUMN, Violin, fits, render_violins
from stilts_tui.domain.records import RunStatus
from stilts_tui.domain.run import Run, runs_of

Records = Iterable[Run | Mapping[str, Any]]   # store records, or runs already typed
RUN_FIELDS = ("run_id", "kind", "intermediate", "target", "lr", "batch_size", "warmup_ratio", "seed", "epochs",
              "max_length", "train_size", "status", "score", "metric", "degenerate", "reason", "wall_s", "attempts")
TERMINAL_PAIR_COLUMNS = ["target", "intermediate", "metric", "n", "min", "mean", "best", "std", "degenerate",
                         "Δ mean", "Δ best", "win rate", "p", "failed"]
VIEWS = ("pairs", "table2", "table3", "table4", "figure3")


def _in_order(records: Records) -> list[Run]:
    return sorted(runs_of(records), key=lambda r: (r.kind != "intermediate", r.target, r.intermediate, r.lr or 0,
                                                   r.batch_size or 0, r.warmup_ratio or 0, r.seed or 0))


def run_rows(records: Records, keep_order: bool = False) -> list[dict]:
    """One flat row per run for JSON and CSV (the record's own values, `degenerate` computed);
    `keep_order`: as given (sorted by the user), else by pair and grid point."""
    rows = []
    for r in runs_of(records) if keep_order else _in_order(records):
        row = {k: r.value(k) for k in RUN_FIELDS if k != "degenerate"}
        row["degenerate"] = r.degenerate if r.status == RunStatus.FINISHED else None
        rows.append(row)
    return rows


def runs_table(records: Records, keep_order: bool = False) -> Table:
    runs = runs_of(records) if keep_order else _in_order(records)
    cols = ["run", "pair", "lr", "bs", "warmup", "seed", "status", "score"]
    out = []
    for r in runs:
        pair = f"{r.intermediate} → {r.target}" if r.kind != "intermediate" else f"[{r.intermediate}]"
        status = r.status + (f" ({r.reason})" if r.reason and r.status != RunStatus.FINISHED else "")
        out.append([r.run_id, pair + (" 0-shot" if r.kind == "zero_shot" else ""), r.lr, r.batch_size,
                    r.warmup_ratio, r.seed, status, r.score])
    return Table(f"{len(runs)} runs", cols, out, {7})


def stats_for(records: Records, by: tuple[str, ...] = ("intermediate", "target"), baseline: str | None = "none",
              resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, pool_models: bool = False) -> list[PairStats]:
    return pair_stats(records, by=by, baseline=baseline, resamples=resamples, seed=seed, pool_models=pool_models)


def render_results(records: Records, fmt: str = "table", runs: bool = False, by: tuple[str, ...] = ("intermediate", "target"),
                   baseline: str | None = "none", resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                   view: str = "pairs", width: int = 120, pool_models: bool = False, keep_order: bool = False) -> str:
    records = runs_of(records)
    if runs:
        if fmt in ("json", "csv"):
            return flat_records(run_rows(records, keep_order), fmt)
        return export.render(runs_table(records, keep_order), fmt, width=width)
    if view == "table4":
        t4 = table4(records)
        if not t4.rows and fmt == "table":
            return ("no zero-shot runs in the results file yet: Table 4 evaluates intermediate checkpoints on the "
                    "targets untrained (zero_shot = \"only\", as in experiments/table4.toml)\n")
        return export.render(t4, fmt, width=width)
    stats = stats_for(records, by, baseline, resamples, seed, pool_models)
    if view == "pairs":
        if fmt in ("json", "csv"):
            return flat_records(pair_records(stats), fmt)
        if not stats:
            return "no target runs in the results file yet\n"
        # The --by fields (and `model` where several models ran) are what tells the rows apart: shown.
        grouped = sorted({k for s in stats for k in s.group})
        terminal = [*TERMINAL_PAIR_COLUMNS[:2], *grouped, *TERMINAL_PAIR_COLUMNS[2:]]
        table = pair_table(stats, resamples, seed, degenerate_sources(records).pairs())
        return export.render(table, fmt, terminal if fmt == "table" else None, width)
    if not stats and fmt == "table":
        return "no finished target runs in the results file yet\n"
    if view == "table2":
        return export.render(table2(stats, baseline or "none"), fmt, width=width)
    if view == "table3":
        return export.render(table3(stats, baseline or "none"), fmt, width=width)
    if view == "figure3":
        text = export.render(figure3_table(stats, baseline or "none"), fmt, width=width)
        return text + ("\n" + figure3_plot(stats, baseline or "none", width=min(78, width)) if fmt == "table" else "")
    raise ValueError(f"unknown view {view}")


@dataclass
class TargetViolins:
    title: str
    violins: list[Violin]
    guess: float | None   # ×100
    majority: float | None = None   # the majority label's score ×100: at or below it, a run is degenerate


def target_violins(records: Records, target: str, baseline: str = "none",
                   only: Collection[str] | None = None) -> TargetViolins | None:
    """The target's finished runs as one Violin per intermediate (the baseline first; `only` these,
    when given), each with its colour index among all the records' intermediates, so an
    intermediate keeps its colour on every chart drawn from the same records. None: no runs."""
    runs = runs_of(records)
    done = [r for r in runs if r.kind == "target" and r.target == target and r.finished
            and (only is None or r.intermediate in only)]
    if not done:
        return None
    by: dict[str, list[float]] = {}
    degenerate: dict[str, int] = {}
    for r in done:
        by.setdefault(r.intermediate, []).append((r.score or 0.0) * 100)
        degenerate[r.intermediate] = degenerate.get(r.intermediate, 0) + r.degenerate
    order = lambda n: (n != baseline, n)  # noqa: E731
    everyone = sorted({r.intermediate for r in runs if r.kind == "target" and r.intermediate}, key=order)
    guess = next((r.guess for r in done if r.guess is not None), None)
    majority = next((r.baselines.majority for r in done if r.baselines.majority is not None), None)
    metric = done[0].metric_name
    return TargetViolins(f"{target}: dev {'MCC' if metric == 'mcc' else metric} ×100 per intermediate",
                         [Violin(n, by[n], degenerate[n], everyone.index(n)) for n in sorted(by, key=order)],
                         None if guess is None else guess * 100, None if majority is None else majority * 100)


def violins_for(records: Records, target: str, baseline: str = "none", width: int = 80, height: int = 14,
                color: bool = False, only: Collection[str] | None = None, max_column: int = MAX_COLUMN) -> str:
    """The target's violins as text, in as many charts of `width` columns as they need."""
    return violins_text(target, target_violins(records, target, baseline, only), width, height, color, max_column)


def violins_text(target: str, tv: TargetViolins | None, width: int = 80, height: int = 14,
                 color: bool = False, max_column: int = MAX_COLUMN) -> str:
    """Violins already gathered, as text (the report draws them once for text and figure)."""
    if tv is None:
        return f"{target}: no finished target runs\n"
    per_row = fits(width)
    return "\n".join(render_violins(tv.title, tv.violins[i : i + per_row], tv.guess, width, height, color,
                                    tv.majority, max_column)
                     for i in range(0, len(tv.violins), per_row))


def software_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("stilts-tui", "torch", "transformers", "datasets", "tokenizers", "tinydb", "numpy", "plotext"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def markdown_report(records: Records, title: str, spec_text: str | None, baseline: str = "none",
                    resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                    figures: Path | None = None, relative_to: Path | None = None) -> str:
    """Every table and each target's violins as text; with `figures` (a folder) and matplotlib
    installed, each target's violins also as a PNG there, linked from the report (the links are
    relative to `relative_to`, the report's own folder)."""
    records = runs_of(records)
    stats = stats_for(records, baseline=baseline, resamples=resamples, seed=seed)
    parts = [f"# {title}", "", f"Generated by `stilts report` on {time.strftime('%Y-%m-%d %H:%M')} from "
             f"{len(records)} runs ({sum(r.status == RunStatus.FINISHED for r in records)} finished). "
             f"{models_line(records)} Scores ×100; {metrics_line(records)}.", ""]
    if stats:
        parts += [export.to_markdown(pair_table(stats, resamples, seed, degenerate_sources(records).pairs())), ""]
        parts += ["## Distributions", ""]
        for target in sorted({s.target for s in stats}):
            tv = target_violins(records, target, baseline)
            parts += ["```", violins_text(target, tv).rstrip(), "```", ""]
            parts += _violin_figure(target, tv, figures, relative_to)
        parts += [export.to_markdown(table2(stats, baseline)), "", export.to_markdown(table3(stats, baseline)), ""]
        fig3 = figure3_table(stats, baseline)
        if fig3.rows:
            parts += [export.to_markdown(fig3), "", "```", figure3_plot(stats, baseline).rstrip(), "```", ""]
    t4 = table4(records)
    if t4.rows:
        parts += [export.to_markdown(t4), ""]
    if not stats and not t4.rows:
        parts += ["No finished target or zero-shot runs yet.", ""]
    if spec_text is not None:
        parts += ["## Experiment spec", "", "```toml", spec_text.rstrip(), "```", ""]
    parts += ["## Software", "", *[f"- {k} {v}" for k, v in software_versions().items()], ""]
    return "\n".join(parts)


def _violin_figure(target: str, tv: TargetViolins | None, figures: Path | None,
                   relative_to: Path | None) -> list[str]:
    from stilts_tui.analysis.violin_figure import matplotlib_available, violin_figure

    if figures is None or tv is None or not matplotlib_available():
        return []
    path = figures / f"violins-{safe_name(target)}.png"
    violin_figure(tv.title, tv.violins, tv.guess, path, tv.majority)
    link = os.path.relpath(path, relative_to) if relative_to is not None else str(path)
    return [f"![{target}: violins]({Path(link).as_posix()})", ""]


def safe_name(name: str) -> str:
    """A task name as a file name (probe and sized names hold `@`, `/` would make folders)."""
    return "".join(ch if ch.isalnum() or ch in "-_.@" else "_" for ch in name)


def models_line(records: Records) -> str:
    """The model(s) the runs fine-tuned, with their run counts: never pooled in the tables."""
    counts: dict[str, int] = {}
    for r in runs_of(records):
        if r.model:
            counts[r.model] = counts.get(r.model, 0) + 1
    if len(counts) == 1:
        return f"Model: `{next(iter(counts))}`."
    if not counts:
        return ""
    listed = ", ".join(f"`{m}` ({n} runs)" for m, n in sorted(counts.items()))
    return f"Models: {listed}; each table keeps them apart (a `model` column)."


def metrics_line(records: Records) -> str:
    """Each task's metric as its finished runs recorded it (MCC for CoLA, accuracy for most)."""
    by_metric: dict[str, set[str]] = {}
    for r in runs_of(records):
        if r.status == RunStatus.FINISHED and r.metric and r.target:
            by_metric.setdefault(r.metric, set()).add(r.target)
    if not by_metric:
        return "no finished runs to name their metrics"
    names = {"mcc": "Matthews correlation", "accuracy": "accuracy", "f1": "F1"}
    return "; ".join(f"{names.get(m, m)}: {', '.join(sorted(ts))}" for m, ts in sorted(by_metric.items()))


def read_spec_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")
