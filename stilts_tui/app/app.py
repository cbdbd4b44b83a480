"""`stilts tui`: the app. Three modes (plan, runs, results), a run detail screen, help and the
command palette. One timer loads a snapshot of the results file, the runner state and the new
event-log lines in a thread once a second (batched), and hands it to the screen on view, so
keys stay responsive however fast runs stream."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from stilts_tui.analysis.degenerate import degenerate_sources
from stilts_tui.app.data import EventTails, Snapshot, load_snapshot
from stilts_tui.app.detail_screen import RunDetailScreen
from stilts_tui.app.help_screen import HelpScreen
from stilts_tui.app.messages import OpenRun, ShowNewest
from stilts_tui.app.plan_screen import PlanScreen
from stilts_tui.app.results_screen import ResultsScreen
from stilts_tui.app.runs_screen import RunsScreen
from stilts_tui.app.threads import deliver, live
from stilts_tui.domain.records import RunStatus
from stilts_tui.domain.run import Run
from stilts_tui.errors import StiltsError
from stilts_tui.runner.slots import Gpu, visible_gpus
from stilts_tui.runner.status import ended_summary, runner_words


class StiltsApp(App):
    CSS_PATH = "stilts.tcss"
    TITLE = "stilts"
    MODES = {"plan": PlanScreen, "runs": RunsScreen, "results": ResultsScreen}
    DEFAULT_MODE = "runs"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        Binding("1", "switch_mode('plan')", "Plan", id="app.plan"),
        Binding("2", "switch_mode('runs')", "Runs", id="app.runs"),
        Binding("3", "switch_mode('results')", "Results", id="app.results"),
        Binding("question_mark,f1", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
        # Shown in the footer only while a text field has the keys (check_action), so the way out
        # is on screen exactly when screen keys would type into the field.
        Binding("escape", "leave_field", "Leave field", id="app.leave_field"),
    ]

    def __init__(self, db: str | Path, refresh_s: float = 1.0, root: Path | None = None) -> None:
        super().__init__()
        self.db = Path(db)
        self.refresh_s = refresh_s
        self.root = root or Path.cwd()
        self.snapshot: Snapshot | None = None
        self.tails = EventTails()
        self.loads = 0
        self.load_error: str | None = None  # what the shown "cannot read" notice says

    def on_mount(self) -> None:
        self.refresh_data()
        self.set_interval(self.refresh_s, self.refresh_data)

    @work(thread=True, exclusive=True, group="snapshot")
    def refresh_data(self) -> None:
        try:
            snap = load_snapshot(self.db, self.tails, self.snapshot)
        except StiltsError as exc:  # a damaged results file: said, and the app stays up on what it had
            deliver(self, self._unreadable, exc)
            return
        gpus = visible_gpus()
        deliver(self, self._apply, snap, gpus)

    def _apply(self, snap: Snapshot, gpus: list[Gpu]) -> None:
        snap.gpus = gpus  # shown with the records of the same refresh
        before, self.snapshot = self.snapshot, snap
        if before is not None and before.runner_running and not snap.runner_running:
            self._sweep_ended(snap)
        self.loads += 1
        if self.load_error is not None:  # the file reads again (restored, or rewritten by the runner)
            self.load_error = None
            self.clear_notifications()  # the hour-long "cannot read" notice among them
            self.notify(f"{self.db} reads again", markup=False)
        self._show_on_screen()

    def _sweep_ended(self, snap: Snapshot) -> None:
        """The runner this app watched ended: what the sweep did, and where to read it, once."""
        state = snap.state or {}
        ids = set(state.get("run_ids") or [])
        runs = [r for r in snap.records if r.run_id in ids] if ids else snap.records
        started, ended = state.get("started_at"), state.get("ended_at")
        wall = ended - started if isinstance(started, int | float) and isinstance(ended, int | float) else None
        text = ended_summary(self.db, str(state.get("name") or ""), runs, wall)
        if state.get("status") not in (None, "finished"):
            text = f"runner {runner_words(state, False)}\n" + text
        failed = any(r.failed for r in runs)
        self.notify(text, title="sweep ended", severity="warning" if failed else "information", timeout=30, markup=False)

    def _unreadable(self, exc: StiltsError) -> None:
        """Said once per problem, not on every refresh; it stays up until the file reads again."""
        text = exc.problem + (f"\nfix: {exc.fix}" if exc.fix else "")
        if text != self.load_error:
            self.load_error = text
            self.notify(text, title="cannot read the results file", severity="error", timeout=3600, markup=False)

    def _show_on_screen(self) -> None:
        # A screen still being composed has no widgets to fill yet (its on_mount shows the
        # newest snapshot itself once they exist), and one being taken down on quit has lost
        # them: a snapshot that lands during shutdown is dropped, never shown.
        if not live(self) or self.snapshot is None:
            return
        screen = self.screen
        if hasattr(screen, "show") and getattr(screen, "ready", False) and live(screen):
            screen.show(self.snapshot)

    @on(ShowNewest)
    def _show_asked(self, message: ShowNewest) -> None:
        message.stop()
        self._show_on_screen()

    def records(self) -> list[Run]:
        """The records of the newest snapshot (none before the first): what a screen reads
        synchronously, where no message fits (the Plan screen's count)."""
        return self.snapshot.records if self.snapshot else []

    @on(OpenRun)
    def _open_asked(self, message: OpenRun) -> None:
        message.stop()
        self.open_run(message.run_id)

    def open_run(self, run_id: str) -> None:
        records = self.records()
        rec = next((r for r in records if r.run_id == run_id), None)
        if rec is not None:
            self.push_screen(RunDetailScreen(rec, degenerate_sources(records).note(rec)))

    def action_leave_field(self) -> None:
        """Escape in a text field gives the keys back to the screen (1 / 2 / 3, q, …); Tab or a
        click goes back in."""
        if self._in_field():
            self.screen.set_focus(None)

    def _in_field(self) -> bool:
        from textual.widgets import Input, TextArea

        return isinstance(self.focused, Input | TextArea)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_field":
            return self._in_field()
        return True

    async def action_quit(self) -> None:
        """Quit, asking first when the Plan screen holds unsaved edits (they would be lost)."""
        plan = self._plan_screen()
        if plan is not None and plan.dirty:
            plan.discard_then(self.exit, "quitting")
        else:
            self.exit()

    def _plan_screen(self) -> PlanScreen | None:
        # The Plan mode's screen once it was shown (a mode's screen lives until the app ends).
        return next((s for s in self._screen_stacks.get("plan", []) if isinstance(s, PlanScreen)), None)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        # Textual's own "Keys" (a second, partial help) and "Maximize" (of one widget) are left
        # out: the help below lists every key, and every screen already fills the terminal.
        yield from (c for c in super().get_system_commands(screen)
                    if c.title not in ("Keys", "Maximize", "Minimize"))
        yield SystemCommand("Plan a sweep", "Pick tasks and the grid, save and launch a spec", lambda: self.switch_mode("plan"))
        yield SystemCommand("Runs", "Every run, live", lambda: self.switch_mode("runs"))
        yield SystemCommand("Results", "Pair table, violins, paper tables", lambda: self.switch_mode("results"))
        yield SystemCommand("Transfer matrix", "Targets and probes × intermediates: Δ against the baseline",
                            lambda: self.show_results("matrix"))
        yield SystemCommand("Correlations", "Spearman's ρ between target and probe columns, Holm-corrected",
                            lambda: self.show_results("correlation"))
        yield SystemCommand("Rank intermediates", "For the selected target, by Δ mean with 95% intervals",
                            lambda: self.show_results("ranking"))
        yield SystemCommand("Save the spec", "Plan: write the spec to its 'save as' path", lambda: self._in_mode("plan", "save"))
        yield SystemCommand("Launch the spec", "Plan: save the spec and start its runner (after the checks)",
                            lambda: self._in_mode("plan", "launch"))
        yield SystemCommand("Open a spec", "Plan: pick or type a spec file", lambda: self._in_mode("plan", "open"))
        yield SystemCommand("Export the current view", "Results: write the view as CSV, Markdown, LaTeX or a figure",
                            lambda: self._in_mode("results", "export"))
        yield SystemCommand("Retry the run under the cursor", "Runs: run it again (failed, stopped or blocked)",
                            lambda: self._in_mode("runs", "retry"))
        yield SystemCommand("Stop the run under the cursor", "Runs: stop it (asks first)", lambda: self._in_mode("runs", "stop"))
        yield SystemCommand("Stop the sweep", "Stop the runner and every run in flight (asks first; resume later)",
                            self.confirm_stop_sweep)
        yield SystemCommand("Resume the sweep", "Start a runner for the sweep whose runner stopped", self.resume_sweep)
        yield SystemCommand("Every key, by screen", "The help: every key binding and what the signs mean",
                            self.action_help)

    def _in_mode(self, mode: str, action: str) -> None:
        """A palette command that belongs to a screen: switch to it, then run its action there."""
        self.switch_mode(mode)
        self.call_after_refresh(lambda: getattr(self.screen, f"action_{action}", lambda: None)())

    def confirm_stop_sweep(self) -> None:
        """Stopping the sweep stops every run in flight: asked first, saying how many."""
        from stilts_tui.app.dialogs import ConfirmScreen

        running = sum(r.status == RunStatus.RUNNING for r in self.records())
        self.push_screen(ConfirmScreen("Stop the sweep?",
                                       f"{running} run(s) in flight stop (each saves its training state first when "
                                       "it can) and are queued again; 'Resume the sweep' continues them.", "Stop"),
                         self._stop_if)

    def _stop_if(self, yes: bool | None) -> None:
        if yes:
            self.stop_sweep()

    def show_results(self, view: str) -> None:
        self.switch_mode("results")
        screen = self.screen
        if isinstance(screen, ResultsScreen):
            screen.show_view(view)

    @work(thread=True, exclusive=True, group="control")
    def stop_sweep(self) -> None:
        from stilts_tui.errors import StiltsError
        from stilts_tui.ops.control import stop_all

        try:
            out = stop_all(self.db)
        except StiltsError as exc:
            self.call_from_thread(self.notify, exc.problem + (f"\nfix: {exc.fix}" if exc.fix else ""),
                                  severity="error", markup=False)
            return
        msg = "no sweep is running" if out["runner"] is None else "sweep stopped; resume later"
        self.call_from_thread(self.notify, msg + (f"\n{out['note']}" if out.get("note") else ""), markup=False)

    @work(thread=True, exclusive=True, group="control")
    def resume_sweep(self) -> None:
        from stilts_tui.errors import StiltsError
        from stilts_tui.ops.resume import prepare_resume, start_resume

        try:
            pid = start_resume(prepare_resume(self.db))
        except StiltsError as exc:
            self.call_from_thread(self.notify, exc.problem + (f"\nfix: {exc.fix}" if exc.fix else ""),
                                  severity="error", markup=False)
            return
        self.call_from_thread(self.notify, f"sweep resumed (runner pid {pid})")
