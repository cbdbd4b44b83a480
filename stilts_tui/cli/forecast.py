"""`stilts forecast`: rank each target's candidate intermediates before training them
(docs/forecast.md); `stilts results --view forecast` scores the forecast against the sweep."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stilts_tui.cli.common import DEFAULT_DB, Commands
from stilts_tui.cli.output import output_width


def cmd_forecast(args: argparse.Namespace) -> int:
    from stilts_tui.analysis.forecast_view import render_forecast
    from stilts_tui.errors import StiltsError
    from stilts_tui.ops.forecast import (
        DEFAULT_SAMPLE,
        ForecastAsk,
        forecast,
        missing_fix,
        parse_methods,
    )

    spec = Path(args.spec)
    if not spec.is_file():
        raise StiltsError(f"spec {spec} not found", "give an experiment spec (.toml), e.g. experiments/forecast_small.toml")
    ask = ForecastAsk(spec, Path(args.db), tuple(args.target or ()), parse_methods(args.method),
                      args.sample if args.sample is not None else DEFAULT_SAMPLE, args.seed)
    result, saved, seconds = forecast(ask)
    sys.stdout.write(render_forecast(result, args.format, output_width()))
    missing = sorted({c for r in result.rankings for c in r.missing})
    if missing:
        print(f"LogME: no finished checkpoint of {', '.join(missing)} in {args.db}; {missing_fix(spec, Path(args.db))}",
              file=sys.stderr)
    print(f"forecast saved to {saved} in {seconds:.1f} s; stilts results --view forecast --db {args.db} compares it "
          "with the sweep", file=sys.stderr)
    return 0


def register(sub: Commands) -> None:
    """Add this module's commands to `stilts`."""
    f = sub.add_parser("forecast", help="rank each target's candidate intermediates before training them (TextEmb, LogME)")
    f.add_argument("spec", help="experiment spec (TOML): its targets and intermediates")
    f.add_argument("--db", default=DEFAULT_DB, help="results file: LogME reads its intermediate checkpoints; the "
                                                    "forecast is saved beside it")
    f.add_argument("--target", action="append", help="only this target (repeatable; default every target)")
    f.add_argument("--method", default="textemb,logme", help="textemb, logme or a comma list (default both)")
    f.add_argument("--sample", type=int, help="train examples drawn from each task (default 256)")
    f.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    f.add_argument("--format", choices=["table", "json", "csv", "markdown"], default="table")
    f.set_defaults(func=cmd_forecast)


def forecast_view(args: argparse.Namespace, width: int) -> int:
    """`stilts results --view forecast`: the saved forecasts against the measured pairs."""
    from stilts_tui.analysis.forecast_data import load_forecasts
    from stilts_tui.analysis.forecast_view import render_forecast_view, write_forecast_view
    from stilts_tui.analysis.validate import check_baseline
    from stilts_tui.cli.common import load_records

    db = Path(args.db)
    records = load_records(db, args.spec, args.filter)
    baseline = args.baseline or "none"
    check_baseline(records, baseline)
    forecasts = load_forecasts(db, args.spec)
    kw = {"baseline": baseline, "resamples": args.resamples, "seed": args.seed}
    if args.output:
        out = Path(args.output)
        print(f"wrote {out} (forecast, {write_forecast_view(out, records, forecasts, **kw)})")
        return 0
    fmt = "table" if args.format == "table" else args.format
    sys.stdout.write(render_forecast_view(records, forecasts, fmt, width=width, **kw))
    return 0
