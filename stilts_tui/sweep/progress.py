"""A rich progress display for a sweep run in the foreground: the whole sweep, and one bar per
run in flight (several at once when the runner has several slots)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from stilts_tui.domain.events import Event
from stilts_tui.domain.records import RunStatus
from stilts_tui.domain.run_config import RunConfig
from stilts_tui.sweep.expand import describe


class SweepProgress:
    def __init__(self, total: int, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=self.console, transient=False)
        self.sweep = self.progress.add_task("sweep", total=total, info="")
        self.bars: dict[str, TaskID] = {}

    def __enter__(self) -> SweepProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def on_event(self, cfg: RunConfig, ev: Event) -> None:
        bar = self.bars.get(cfg.run_id)
        if ev["event"] == "started":
            if bar is not None:
                self.progress.remove_task(bar)
            self.bars[cfg.run_id] = self.progress.add_task(
                escape(f"  {cfg.run_id} {describe(cfg)}"), total=max(ev.get("total_steps", 0), 1), info="loading")
        elif bar is None:
            return
        elif ev["event"] == "step":
            self.progress.update(bar, completed=ev["step"], info=f"loss {ev['loss']:.3f}  {ev['sequences_per_s']:.0f} seq/s")
        elif ev["event"] == "eval":
            self.progress.update(bar, info=f"dev {ev['metric']} {ev['score']:.4f}")

    def on_run(self, cfg: RunConfig, record: dict) -> None:
        bar = self.bars.pop(cfg.run_id, None)
        if bar is not None:
            self.progress.remove_task(bar)
        status = record.get("status")
        if status in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.STOPPED):
            self.progress.advance(self.sweep)
        hp = f"lr {cfg.lr:g} bs {cfg.batch_size} wu {cfg.warmup_ratio:g} seed {cfg.seed}" if cfg.kind == "target" else ""
        what = escape(f"{cfg.run_id} {describe(cfg):<36} {hp}".rstrip())
        if status == RunStatus.FINISHED:
            line = f"[green]✓[/] {what}  {record['metric']} {record['score']:.4f}"
        elif status == RunStatus.QUEUED:
            line = f"[yellow]↻[/] {what}  retrying: {escape(record.get('message') or '')}"
        else:
            line = f"[red]✗[/] {what}  {status}: {escape(str(record.get('reason')))} {escape(record.get('message') or '')}"
        self.console.print(line, soft_wrap=True)  # one line per run, also in a log or a pipe

    def notice(self, message: str) -> None:
        """What the runner has to say beside the runs (a full disk, a stalled run), above the bars."""
        self.console.print(f"[yellow]![/] {escape(message)}", soft_wrap=True)
