"""A rich progress display for a sweep run from the command line (headless mode)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from stilts_tui.sweep.spec import describe
from stilts_tui.train.config import RunConfig


class SweepProgress:
    def __init__(self, total: int, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=self.console, transient=False)
        self.sweep = self.progress.add_task("sweep", total=total, info="")
        self.current = self.progress.add_task("waiting", total=1, info="", visible=False)

    def __enter__(self) -> SweepProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def on_event(self, cfg: RunConfig, ev: dict) -> None:
        kind = ev["event"]
        if kind == "started":
            self.progress.update(self.current, description=f"{cfg.run_id} {describe(cfg)}", completed=0,
                                 total=max(ev.get("total_steps", 0), 1), info="loading", visible=True)
        elif kind == "step":
            self.progress.update(self.current, completed=ev["step"],
                                 info=f"loss {ev['loss']:.3f}  {ev['sequences_per_s']:.0f} seq/s")
        elif kind == "eval":
            self.progress.update(self.current, info=f"dev {ev['metric']} {ev['score']:.4f}")

    def on_run(self, cfg: RunConfig, record: dict) -> None:
        self.progress.advance(self.sweep)
        hp = f"lr {cfg.lr:g} bs {cfg.batch_size} wu {cfg.warmup_ratio:g} seed {cfg.seed}" if cfg.kind == "target" else ""
        if record.get("status") == "finished":
            self.console.print(f"[green]✓[/] {cfg.run_id} {describe(cfg):<40} {hp:<36} {record['metric']} {record['score']:.4f}")
        else:
            self.console.print(f"[red]✗[/] {cfg.run_id} {describe(cfg):<40} {hp:<36} failed: {record.get('reason')} "
                               f"{record.get('message') or ''}")
