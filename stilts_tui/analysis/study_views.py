"""The whole-study views (`stilts results --view matrix | correlation | ranking`) in every format:
the terminal (coloured, or plain when piped), Markdown, LaTeX, CSV / JSON records at full
precision, and a figure file."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text

from stilts_tui.analysis import export, heatmap
from stilts_tui.analysis.correlation import correlations
from stilts_tui.analysis.flat import flat_records
from stilts_tui.analysis.matrix import MARKS, STATS, build_matrix, ranking
from stilts_tui.analysis.matrix_views import (
    CORRELATION_SHOWS,
    correlation_heat,
    correlation_records,
    matrix_heat,
    matrix_records,
    ranking_table,
)
from stilts_tui.analysis.significance import HOLM_VARIANTS
from stilts_tui.analysis.stats import DEFAULT_RESAMPLES, DEFAULT_SEED
from stilts_tui.domain.run import Run, runs_of
from stilts_tui.errors import StiltsError, did_you_mean

STUDY_VIEWS = ("matrix", "correlation", "ranking")
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
FILE_FORMATS = {".csv": "csv", ".json": "json", ".md": "markdown", ".tex": "latex", ".txt": "table"}


@dataclass
class StudyOptions:
    stats: tuple[str, ...] = ("mean",)
    order: str | list[str] = "name"
    mark: str = "ci"
    show: str = "full"
    holm: str = "jiant"
    target: str | None = None
    scale: float | None = None
    baseline: str = "none"
    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED


def parse_stats(text: str) -> tuple[str, ...]:
    stats = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in stats if s not in STATS]
    if not stats or bad:
        raise StiltsError(f"--stat {text!r}: {'unknown statistic ' + repr(bad[0]) if bad else 'no statistic given'}",
                          "choose from " + ", ".join(STATS) + " (a comma list shows several: mean,best,degenerate)")
    return stats


def parse_order(text: str) -> str | list[str]:
    if text in ("name", "gain", "paper"):
        return text
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise StiltsError("--order is empty", "give name, gain, paper, or intermediates in order: a,b,c")
    return names


def check(opts: StudyOptions) -> None:
    if opts.mark not in MARKS:
        raise StiltsError(f"--mark {opts.mark!r} is not one of {', '.join(MARKS)}")
    if opts.holm not in HOLM_VARIANTS:
        raise StiltsError(f"--holm {opts.holm!r} is not one of {', '.join(HOLM_VARIANTS)}")
    if opts.show not in CORRELATION_SHOWS:
        raise StiltsError(f"--show {opts.show!r} is not one of {', '.join(CORRELATION_SHOWS)}")
    if opts.scale is not None and opts.scale <= 0:
        raise StiltsError("--scale must be above 0 (the |Δ ×100| at full colour)")


def _targets(records: list[Run]) -> list[str]:
    return sorted({r.target for r in records if r.kind == "target"})


def _ranking(records: list[Run], opts: StudyOptions):
    targets = _targets(records)
    target = opts.target or (targets[0] if targets else None)
    if target not in targets:
        hint = did_you_mean(target, targets) if target else ""
        raise StiltsError(f"no target runs for {target!r}" + (f"; {hint}" if hint else "") if target
                          else "no target runs in the results file yet",
                          "targets with runs: " + (", ".join(targets) or "none yet"))
    assert target is not None
    head, ranked = ranking(records, target, opts.baseline, opts.resamples, opts.seed)
    return ranking_table(target, opts.baseline, head, ranked, opts.resamples)


def heat_for(records: list[Run], view: str, opts: StudyOptions) -> heatmap.Heat:
    if view == "matrix":
        m = build_matrix(records, opts.stats, opts.baseline, opts.order, opts.mark, opts.resamples, opts.seed)
        return matrix_heat(m, opts.scale)
    return correlation_heat(_correlations(records, opts), opts.show)


def _correlations(records: list[Run], opts: StudyOptions):
    return correlations(records, opts.baseline, variant=opts.holm, paper=opts.order == "paper")


def _records(records: list[Run], view: str, opts: StudyOptions) -> list[dict]:
    if view == "matrix":
        return matrix_records(build_matrix(records, opts.stats, opts.baseline, opts.order, opts.mark, opts.resamples,
                                           opts.seed))
    return correlation_records(_correlations(records, opts))


def render_study(records: Iterable[Run | Mapping[str, Any]], view: str, fmt: str, opts: StudyOptions,
                 width: int = 120, colour: bool = False, fit: bool = False) -> str | Text:
    """The view as text; for the terminal format with `colour`, as rich Text. With `fit` (output
    piped or redirected) a grid's columns are as wide as their labels (heatmap.to_text)."""
    check(opts)
    records = runs_of(records)
    if not any(r.kind == "target" for r in records):
        return "no target runs in the results file yet\n"
    if view == "ranking":
        table = _ranking(records, opts)
        return export.render(table, fmt, width=width)
    if fmt in ("csv", "json"):
        return flat_records(_records(records, view, opts), fmt)
    heat = heat_for(records, view, opts)
    if fmt == "markdown":
        return heatmap.to_markdown(heat)
    if fmt == "latex":
        return heatmap.to_latex(heat)
    text = heatmap.to_text(heat, width, colour, fit)
    return text if colour else text.plain


def write_study(records: Iterable[Run | Mapping[str, Any]], view: str, path: Path, opts: StudyOptions) -> str:
    """Write the view to `path`, the format chosen by its suffix; returns what was written."""
    try:
        return _write(runs_of(records), view, path, opts)
    except OSError as exc:
        raise StiltsError(f"could not write {path}: {exc.strerror or exc}",
                          "choose a folder you can write to (-o DIR/FILE)") from None


def _write(records: list[Run], view: str, path: Path, opts: StudyOptions) -> str:
    suffix = path.suffix.lower()
    if suffix in FIGURE_SUFFIXES:
        if view == "ranking":
            raise StiltsError("the ranking is a table: write it as .csv, .json, .md, .tex or .txt")
        check(opts)
        heatmap.to_figure(heat_for(records, view, opts), path)
        return f"figure ({suffix[1:]})"
    fmt = FILE_FORMATS.get(suffix)
    if fmt is None:
        raise StiltsError(f"{path}: unknown file type {suffix or '(none)'}",
                          "use .png, .svg or .pdf for a figure, or .csv, .json, .md, .tex, .txt")
    text = render_study(records, view, fmt, opts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(text), encoding="utf-8")
    return fmt
