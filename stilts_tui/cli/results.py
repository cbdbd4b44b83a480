"""Reading a study: `stilts results`, `plot` and `report`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stilts_tui.analysis.validate import check_baseline
from stilts_tui.cli.common import DEFAULT_DB, Commands, load_records, print_results, want_colour
from stilts_tui.cli.output import on_terminal, output_console, output_width
from stilts_tui.domain.run import runs_of
from stilts_tui.errors import StiltsError, did_you_mean

# analysis.study_views.STUDY_VIEWS, named here so that `stilts --help` does not import numpy.
STUDY_VIEWS = ("matrix", "correlation", "ranking")


# What a runner writes beside its results file RESULTS.json (runner/files.py RunnerFiles): a path
# to one of them given as --db is named as what it is, with the results file it belongs to.
_RUNNER_FILES = {".runner.json": "the runner's state file", ".runner.log": "the runner's log"}
_RUNNER_FOLDERS = {".sweeps": "a sweep file (what stilts resume reads)", ".runs": "a run's own file",
                   ".control": "a runner request", ".slurm": "a Slurm job's file", ".workers": "a worker's file"}


def check_results_file(db: Path) -> None:
    """Refuse a runner's own file passed as the results file, naming the results file instead
    (both are JSON: read as one it would only say "no runs")."""
    for suffix, what in _RUNNER_FILES.items():
        if db.name.endswith(suffix):
            _not_results(db, what, db.with_name(db.name.removesuffix(suffix) + ".json"))
    for folder in db.parents:
        for suffix, what in _RUNNER_FOLDERS.items():
            if folder.name.endswith(suffix) and folder.name != suffix:
                _not_results(db, what, folder.with_name(folder.name.removesuffix(suffix) + ".json"))


def _not_results(db: Path, what: str, results: Path) -> None:
    raise StiltsError(f"{db} is not a results file: it is {what} of the sweep on {results}",
                      f"stilts results --db {results}")


def check_filters_match(db: Path, spec: str | None, filters: list[str] | None) -> None:
    """Filters that leave no run of a file that has runs: said as such (with the values the file
    holds), not as "no runs yet"."""
    from stilts_tui.analysis.filters import parse_filters

    wanted = parse_filters(filters)
    if not wanted or load_records(db, spec, filters):
        return
    every = load_records(db, spec)
    if not every:
        return
    held = []
    for key in wanted:
        values = sorted({str(v) for r in every if (v := r.value(key)) is not None})
        held.append(f"{key}: {', '.join(values[:8])}" + (f" … ({len(values)} values)" if len(values) > 8 else ""))
    shown = " ".join(f"{k}={v}" for k, v in wanted.items())
    raise StiltsError(f"no run matches --filter {shown} ({len(every)} runs in {db})",
                      "values held here: " + "; ".join(held))


def _by(text: str) -> tuple[str, ...]:
    fields = tuple(f.strip() for f in text.split(",") if f.strip())
    if not fields:
        raise StiltsError("--by needs at least one field", "e.g. --by intermediate,target or --by intermediate,target,lr")
    return fields


def cmd_results(args: argparse.Namespace) -> int:
    if args.resamples < 0:
        raise StiltsError("--resamples must be 0 or more")
    check_results_file(Path(args.db))
    check_filters_match(Path(args.db), args.spec, args.filter)
    # On a terminal the table fits its width (least important columns left out); piped or
    # redirected it is whole: every column, and a matrix's columns as wide as their names.
    width = output_width()
    if args.view in STUDY_VIEWS:
        return _study_view(args, width)
    if args.view == "forecast":
        from stilts_tui.cli.forecast import forecast_view

        return forecast_view(args, width)
    if args.output:
        raise StiltsError("--output writes the matrix, correlation and ranking views",
                          "for the other views redirect the output: stilts results --format csv > pairs.csv")
    if args.sort or args.top is not None:
        return _sorted_runs(args, width)
    print_results(Path(args.db), args.format, args.runs, args.spec, filters=args.filter, by=_by(args.by),
                   baseline=args.baseline or None, resamples=args.resamples, seed=args.seed, view=args.view,
                   width=width, pool_models=args.pool_models)
    return 0


def _sorted_runs(args: argparse.Namespace, width: int) -> int:
    """`--runs --sort KEY --top N`: one row per run, in the order asked for."""
    from stilts_tui.analysis.report import render_results
    from stilts_tui.analysis.sorting import sort_runs

    if not args.runs:
        raise StiltsError("--sort and --top order the runs, one row each", "add --runs: stilts results --runs --sort score "
                          "--top 10")
    runs = sort_runs(load_records(Path(args.db), args.spec, args.filter), args.sort, args.top)
    sys.stdout.write(render_results(runs, args.format, runs=True, width=width, keep_order=bool(args.sort)))
    return 0


def _study_view(args: argparse.Namespace, width: int) -> int:
    from stilts_tui.analysis.study_views import (
        StudyOptions,
        parse_order,
        parse_stats,
        render_study,
        write_study,
    )

    opts = StudyOptions(stats=parse_stats(args.stat), order=parse_order(args.order), mark=args.mark, show=args.show,
                        holm=args.holm, target=args.target, scale=args.scale, baseline=args.baseline or "none",
                        resamples=args.resamples, seed=args.seed)
    records = load_records(Path(args.db), args.spec, args.filter)
    check_baseline(records, opts.baseline)
    if args.output:
        out = Path(args.output)
        what = write_study(records, args.view, out, opts)
        print(f"wrote {out} ({args.view}, {what})")
        return 0
    piped = not on_terminal()
    colour = args.format == "table" and not piped
    text = render_study(records, args.view, args.format, opts, width, colour, fit=piped)
    if colour:
        output_console(highlight=False, soft_wrap=True).print(text, end="")
    else:
        sys.stdout.write(str(text))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from stilts_tui.analysis.report import violins_for

    if args.width < 40 or args.height < 6:
        raise StiltsError("--width must be at least 40 and --height at least 6")
    if args.runs:
        sys.stdout.write(_curves(Path(args.db), args.runs, "lr" if args.lr else "loss", args.width, args.height,
                                 want_colour(args.format)))
        return 0
    if not args.target:
        raise StiltsError("say what to plot: a target's violins, or runs' curves",
                          "stilts plot rte  or  stilts plot --runs RUN_ID [RUN_ID ...]")
    check_results_file(Path(args.db))
    check_filters_match(Path(args.db), args.spec, args.filter)
    records = load_records(Path(args.db), args.spec, args.filter)
    check_baseline(records, args.baseline)
    targets = sorted({r.target for r in records if r.kind == "target"})
    if args.target not in targets:
        hint = did_you_mean(args.target, targets)
        raise StiltsError(f"no target runs for {args.target!r} in {args.db}" + (f"; {hint}" if hint else ""),
                          "targets with runs: " + (", ".join(targets) or "none yet"))
    sys.stdout.write(violins_for(records, args.target, args.baseline, args.width, args.height, want_colour(args.format)))
    return 0


def _curves(db: Path, run_ids: list[str], what: str, width: int, height: int, colour: bool) -> str:
    """The runs' loss (or learning-rate) curves, overlaid, from their event logs' current attempts."""
    from stilts_tui.analysis.curves import Curve, differing_labels, render_curves
    from stilts_tui.domain.events import read_events
    from stilts_tui.store import Store

    with Store(db) as store:
        records = [store.get(run_id) for run_id in run_ids]
    missing = [run_id for run_id, rec in zip(run_ids, records, strict=True) if rec is None]
    if missing:
        raise StiltsError(f"no run {', '.join(missing)} in {db}", f"list them with stilts results --runs --db {db}")
    runs = runs_of(rec for rec in records if rec is not None)
    labels = differing_labels([r.settings for r in runs], run_ids)
    curves = []
    for run, label in zip(runs, labels, strict=True):
        events = [e for e in read_events(run.events_path) if e["attempt"] == (run.attempts or 1)]
        steps = [e for e in events if e["event"] == "step"]
        loss_at = {e["step"]: e["loss"] for e in steps}
        marks = [] if what == "lr" else [(float(e["step"]), float(loss_at[e["step"]])) for e in events
                                          if e["event"] == "eval" and e["step"] in loss_at]
        curves.append(Curve(label, [e["step"] for e in steps], [e["lr" if what == "lr" else "loss"] for e in steps],
                            marks))
    title = f"{'learning rate' if what == 'lr' else 'training loss'} of {len(curves)} run(s)" + \
        ("" if what == "lr" else "  (◆ evaluations)")
    return render_curves(curves, title, what, width, height, color=colour)


def cmd_report(args: argparse.Namespace) -> int:
    from stilts_tui.analysis.report import markdown_report

    source = Path(args.source)
    if not source.is_file():
        raise StiltsError(f"{source} not found", "give an experiment spec (.toml) or a results file (.json)")
    spec_text, spec_name, db = None, None, Path(args.db)
    if source.suffix == ".toml":
        from stilts_tui.sweep.spec import load_spec

        spec_name = load_spec(source).name
        spec_text = source.read_text(encoding="utf-8")
    else:
        db = source
    check_results_file(db)
    check_filters_match(db, spec_name, args.filter)
    records = load_records(db, spec_name, args.filter)
    check_baseline(records, args.baseline)
    title = args.title or (f"stilts report: {spec_name}" if spec_name else f"stilts report: {db}")
    out = Path(args.output)
    figures = None if args.no_figures else out.parent / f"{out.stem}-figures"
    text = markdown_report(records, title, spec_text, args.baseline, args.resamples, args.seed,
                           figures=figures, relative_to=out.parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    drawn = text.count("![")
    print(f"wrote {out} ({len(records)} runs)" + (f" and {drawn} figure(s) in {figures}" if drawn else ""))
    return 0


def register(sub: Commands) -> None:
    """Add this module's commands to `stilts`."""
    res = sub.add_parser("results", help="summary per (intermediate, target) with statistics, a paper table, or one row per run")
    res.add_argument("--db", default=DEFAULT_DB)
    res.add_argument("--format", choices=["table", "json", "csv", "markdown", "latex"], default="table")
    res.add_argument("--runs", action="store_true", help="one row per run instead of per pair")
    res.add_argument("--sort", metavar="KEY", help="with --runs: order by the score (best first) or any field or "
                                                   "setting (smallest first); --sort=-KEY turns it round")
    res.add_argument("--top", type=int, metavar="N", help="with --runs: only the first N (after --sort)")
    res.add_argument("--view", choices=["pairs", "table2", "table3", "table4", "figure3", *STUDY_VIEWS, "forecast"],
                     default="pairs",
                     help="pairs (default), table2 (best), table3 (Δ mean / Δ best), table4 (zero-shot), figure3 (size), "
                          "matrix (targets/probes × intermediates), correlation (Spearman between columns), "
                          "ranking (intermediates for one --target), forecast (stilts forecast's rankings vs the measured)")
    res.add_argument("--stat", default="mean",
                     help="matrix: mean, best, median or degenerate, or a comma list (default mean)")
    res.add_argument("--order", default="name",
                     help="matrix columns: name (default), gain (by the average Δ over targets), paper (the second "
                          "study's figure order, rows too) or a,b,c")
    res.add_argument("--mark", default="ci", help="matrix: * where the 95%% bootstrap interval excludes 0 (ci, "
                                                  "default) or where the permutation p passes Holm-Bonferroni (holm)")
    res.add_argument("--scale", type=float, help="matrix: the |Δ ×100| at full colour (default: the largest, rounded up)")
    res.add_argument("--show", default="full", help="correlation: full (every pair, default) or targets (targets × "
                                                    "every column, only significant cells labelled)")
    res.add_argument("--holm", default="jiant",
                     help="correlation: jiant (default: the study's plot_results.py thresholds α/(m−k+2) over its "
                          "target rows × all columns) or standard (α/(m−k+1) over distinct pairs)")
    res.add_argument("--target", help="ranking: the target to rank intermediates for (default the first)")
    res.add_argument("-o", "--output", help="matrix/correlation/ranking: write to this file, the type by its suffix "
                                            "(.png .svg .pdf figure; .csv .json .md .tex .txt)")
    res.add_argument("--by", default="intermediate,target", help="fields to group by (default intermediate,target; "
                     "runs of different models are always kept apart unless --pool-models)")
    res.add_argument("--pool-models", action="store_true", help="pool runs of different models into one row")
    res.add_argument("--baseline", default="none", help="intermediate to compare against (default none; '' for no comparison)")
    res.add_argument("--filter", action="append", metavar="KEY=VALUE", help="only runs with this field value (repeatable)")
    res.add_argument("--resamples", type=int, default=1000, help="bootstrap / permutation resamples (default 1000)")
    res.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")
    res.add_argument("--spec", help="only runs of this spec name")
    res.set_defaults(func=cmd_results)

    pt = sub.add_parser("plot", help="violins of dev scores per intermediate for one target, or runs' loss curves")
    pt.add_argument("target", nargs="?")
    pt.add_argument("--runs", nargs="+", metavar="RUN_ID", help="overlay these runs' training-loss curves instead")
    pt.add_argument("--lr", action="store_true", help="with --runs: their learning-rate schedules")
    pt.add_argument("--db", default=DEFAULT_DB)
    pt.add_argument("--filter", action="append", metavar="KEY=VALUE")
    pt.add_argument("--spec", help="only runs of this spec name")
    pt.add_argument("--baseline", default="none", help="the intermediate drawn first (default none)")
    pt.add_argument("--width", type=int, default=80)
    pt.add_argument("--height", type=int, default=14)
    pt.add_argument("--format", choices=["auto", "text", "color"], default="auto",
                    help="text: plain characters; color: ANSI colours; auto (default): colour on a terminal "
                         "unless NO_COLOR is set")
    pt.set_defaults(func=cmd_plot)

    rp = sub.add_parser("report", help="a Markdown report: every table, the violins, the spec and software versions")
    rp.add_argument("source", help="an experiment spec (.toml; its runs in --db) or a results file (.json)")
    rp.add_argument("-o", "--output", required=True)
    rp.add_argument("--db", default=DEFAULT_DB)
    rp.add_argument("--filter", action="append", metavar="KEY=VALUE")
    rp.add_argument("--baseline", default="none")
    rp.add_argument("--resamples", type=int, default=10000, help="resamples for intervals and tests (default 10000)")
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--title")
    rp.add_argument("--no-figures", action="store_true",
                    help="text only: no violin figures (PNG, next to the report in REPORT-figures/; needs matplotlib)")
    rp.set_defaults(func=cmd_report)
