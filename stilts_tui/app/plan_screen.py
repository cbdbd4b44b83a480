"""Plan: pick the model, intermediates, targets and grid (the paper's grid preloaded) and where
the runs go (this machine, or a Slurm cluster), see the number of runs, how many are done and the
estimated device-hours live, save the spec as TOML and launch it (the runner starts detached).
Opens any spec from experiments/."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import tomli_w
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Select, SelectionList, Static, TextArea

from stilts_tui.app.format import esc
from stilts_tui.errors import StiltsError
from stilts_tui.records import RunStatus

if TYPE_CHECKING:
    from stilts_tui.app.app import StiltsApp

PAPER_GRID = {"lr": "5e-6, 1e-5, 2e-5", "batch_size": "8, 16, 32", "warmup_ratio": "0.0, 0.2", "seed": "12, 42"}
GRID_KEYS = ("lr", "batch_size", "warmup_ratio", "seed")
EXECUTOR_CHOICES = [("local (this machine)", "local"), ("slurm (jobs via submitit)", "slurm")]


def _numbers(text: str, key: str) -> list:
    out = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(int(part) if key in ("batch_size", "seed") else float(part))
        except ValueError:
            raise StiltsError(f"grid {key}: {part!r} is not a number", f"e.g. {PAPER_GRID[key]}") from None
    if not out:
        raise StiltsError(f"grid {key} is empty", f"e.g. {PAPER_GRID[key]}")
    return out


def spec_files(root: Path) -> list[Path]:
    return sorted((root / "experiments").glob("*.toml")) if (root / "experiments").is_dir() else []


class PlanScreen(Screen):
    if TYPE_CHECKING:  # the app this screen belongs to, for the type checker
        app: StiltsApp

    BINDINGS = [
        Binding("ctrl+s", "save", "Save spec", id="plan.save"),
        Binding("ctrl+l", "launch", "Launch", id="plan.launch"),
        Binding("ctrl+f", "search", "Search tasks", id="plan.search"),
    ]

    def __init__(self, root: Path | None = None) -> None:
        super().__init__(id="plan")
        self.root = root or Path.cwd()
        self.extra: dict = {}  # spec keys the form does not edit, kept from an opened spec

    def compose(self) -> ComposeResult:
        from stilts_tui.tasks import all_tasks

        names = [t.name for t in all_tasks()]
        yield Static("", id="plan-status")
        with VerticalScroll(id="plan-body"):
            with Horizontal(classes="row"):
                yield Label("open", classes="key")
                yield Select([(p.name, str(p)) for p in spec_files(self.root)], prompt="an experiment spec…", id="plan-open")
            with Horizontal(classes="row"):
                yield Label("name", classes="key")
                yield Input("my-study", id="plan-name")
                yield Label("model", classes="key")
                yield Input("roberta-large", id="plan-model")
            with Horizontal(classes="row"):
                yield Label("data dir", classes="key")
                yield Input("", placeholder="folder with the release files", id="plan-data")
            with Horizontal(classes="row"):
                yield Label("executor", classes="key")
                yield Select(EXECUTOR_CHOICES, value="local", allow_blank=False, id="plan-executor")
                yield Label("partition", classes="key")
                yield Input("", placeholder="Slurm: the cluster's default", id="plan-partition", disabled=True)
            yield Input(placeholder="search tasks (ctrl+f)", id="plan-search")
            with Horizontal(id="plan-lists"):
                with Vertical():
                    yield Label("intermediates")
                    yield SelectionList[str](*[(n, n, n == "none") for n in ["none", *names]], id="plan-intermediates")
                with Vertical():
                    yield Label("targets")
                    yield SelectionList[str](*[(n, n, n == "rte") for n in names], id="plan-targets")
            for key in GRID_KEYS:
                with Horizontal(classes="row"):
                    yield Label(key, classes="key")
                    yield Input(PAPER_GRID[key], id=f"plan-grid-{key}")
            yield Label("per-task overrides (TOML), e.g. [tasks.rte] epochs = 10")
            yield TextArea("", id="plan-overrides", language=None)
            with Horizontal(classes="row"):
                yield Label("save as", classes="key")
                yield Input("experiments/my-study.toml", id="plan-path")
        yield Footer()

    def on_mount(self) -> None:
        self.names = {"intermediates": self._options("#plan-intermediates"), "targets": self._options("#plan-targets")}
        self.query_one("#plan-name", Input).focus()
        self.recount()

    def _options(self, sel: str) -> list[str]:
        lst = self.query_one(sel, SelectionList)
        return [lst.get_option_at_index(i).value for i in range(lst.option_count)]

    # -------------------------------------------------------------- the spec in the form

    def raw_spec(self) -> dict:
        raw = {k: v for k, v in self.extra.items()
               if k not in ("name", "model", "data_dir", "intermediates", "targets", "grid", "tasks", "executor", "slurm")}
        raw["name"] = self.query_one("#plan-name", Input).value.strip() or "my-study"
        raw["model"] = self.query_one("#plan-model", Input).value.strip()
        data = self.query_one("#plan-data", Input).value.strip()
        if data:
            raw["data_dir"] = data
        if self.query_one("#plan-executor", Select).value == "slurm":
            # the opened spec's other [slurm] settings are kept; a local spec carries none
            raw["executor"] = "slurm"
            slurm = dict(self.extra.get("slurm", {}))
            partition = self.query_one("#plan-partition", Input).value.strip()
            if partition:
                slurm["partition"] = partition
            else:
                slurm.pop("partition", None)
            if slurm:
                raw["slurm"] = slurm
        raw["intermediates"] = list(self.query_one("#plan-intermediates", SelectionList).selected)
        raw["targets"] = list(self.query_one("#plan-targets", SelectionList).selected)
        grid = dict(self.extra.get("grid", {}))
        for key in GRID_KEYS:
            grid[key] = _numbers(self.query_one(f"#plan-grid-{key}", Input).value, key)
        raw["grid"] = grid
        text = self.query_one("#plan-overrides", TextArea).text.strip()
        if text:
            try:
                raw["tasks"] = tomllib.loads(text).get("tasks", {})
            except tomllib.TOMLDecodeError as exc:
                raise StiltsError(f"per-task overrides: {exc}", "write TOML tables such as [tasks.rte] epochs = 10") from None
        return raw

    def load(self, path: Path) -> None:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        self.extra = raw
        self.query_one("#plan-name", Input).value = str(raw.get("name", path.stem))
        self.query_one("#plan-model", Input).value = str(raw.get("model", ""))
        self.query_one("#plan-data", Input).value = str(raw.get("data_dir", ""))
        executor = raw.get("executor", "local")
        self.query_one("#plan-executor", Select).value = executor if executor in ("local", "slurm") else "local"
        self.query_one("#plan-partition", Input).value = str(raw.get("slurm", {}).get("partition", ""))
        for sel, key in (("#plan-intermediates", "intermediates"), ("#plan-targets", "targets")):
            lst = self.query_one(sel, SelectionList)
            lst.deselect_all()
            for name in raw.get(key, ["none"] if key == "intermediates" else []):
                if name in self.names[key]:
                    lst.select(name)
        for key in GRID_KEYS:
            values = raw.get("grid", {}).get(key)
            if values is not None:
                self.query_one(f"#plan-grid-{key}", Input).value = ", ".join(f"{v:g}" if isinstance(v, float) else str(v)
                                                                           for v in values)
        tasks = raw.get("tasks", {})
        self.query_one("#plan-overrides", TextArea).text = tomli_w.dumps({"tasks": tasks}) if tasks else ""
        self.query_one("#plan-path", Input).value = str(path.relative_to(self.root) if path.is_relative_to(self.root) else path)
        self.recount()

    # -------------------------------------------------------------- live count

    @on(Input.Changed)
    @on(SelectionList.SelectedChanged)
    @on(TextArea.Changed)
    def _changed(self, event) -> None:
        if getattr(event, "input", None) is not None and event.input.id in ("plan-search", "plan-path"):
            return
        self.recount()

    def recount(self) -> None:
        self._count(self.app.snapshot.records if self.app.snapshot else [])

    @work(thread=True, exclusive=True, group="plan")
    def _count(self, records: list[dict]) -> None:
        from textual.worker import get_current_worker

        from stilts_tui.runner.estimate import estimate_seconds
        from stilts_tui.sweep.placement import runs_for
        from stilts_tui.sweep.spec import parse_spec

        try:
            raw = self.app.call_from_thread(self.raw_spec)
            spec = parse_spec(raw, base=self.root / "experiments")
            runs = runs_for(spec, self.app.db)
        except StiltsError as exc:
            text = f"[b]spec:[/b] {esc(exc.problem)}" + (f" — {esc(exc.fix)}" if exc.fix else "")
        else:
            done_ids = {r["run_id"] for r in records if r.get("status") == RunStatus.FINISHED}
            todo = [r for r in runs if r.run_id not in done_ids]
            secs, basis = estimate_seconds(todo, records)
            est = f"≈ {secs / 3600:.1f} device-hours" if secs is not None else "no throughput measured for this model yet"
            disk = self._disk(spec, runs, done_ids)
            counts = (f"[b]{len(runs)} runs[/b] ({sum(r.kind == 'intermediate' for r in runs)} intermediate)  "
                      f"done {len(runs) - len(todo)}  to run {len(todo)}  {est}   ctrl+s save · ctrl+l launch")
            # Not enough disk comes first: on a narrow terminal the second line may not show.
            text = (f"[b red]⚠ not enough disk:[/] {esc(disk.describe())}\n{counts}" if disk.short
                    else f"{counts}\ndisk: {esc(disk.describe())}")
        self.app.call_from_thread(self._show_count, get_current_worker(), text)

    def _disk(self, spec, runs: list, finished: set[str]):
        from stilts_tui.runner.disk_need import sweep_disk_need
        from stilts_tui.runner.options import RunnerOptions, with_executor

        return sweep_disk_need(runs, self.app.db, finished, with_executor(RunnerOptions(), spec, check=False))

    def _show_count(self, worker, text: str) -> None:
        # A newer count cancelled this one while it ran (a thread cannot be stopped): its figure is
        # stale. Checked here, on the app's thread, where cancellation happens, so no race.
        if not worker.is_cancelled:
            self.query_one("#plan-status", Static).update(text)

    # -------------------------------------------------------------- actions

    @on(Select.Changed, "#plan-executor")
    def _executor(self, event: Select.Changed) -> None:
        self.query_one("#plan-partition", Input).disabled = event.value != "slurm"
        self.recount()

    @on(Select.Changed, "#plan-open")
    def _open(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            try:
                self.load(Path(event.value))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                self.notify(f"cannot open {event.value}: {exc}", severity="error", markup=False)

    def action_search(self) -> None:
        self.query_one("#plan-search", Input).focus()

    @on(Input.Changed, "#plan-search")
    def _search(self, event: Input.Changed) -> None:
        needle = event.value.strip().lower()
        for sel, key in (("#plan-intermediates", "intermediates"), ("#plan-targets", "targets")):
            lst = self.query_one(sel, SelectionList)
            chosen = set(lst.selected)
            lst.clear_options()
            lst.add_options([(n, n, n in chosen) for n in self.names[key] if needle in n or n in chosen])

    def save(self) -> Path | None:
        try:
            raw = self.raw_spec()
            from stilts_tui.sweep.spec import parse_spec

            parse_spec(raw, base=self.root / "experiments")
        except StiltsError as exc:
            self.notify(exc.problem + (f"\n{exc.fix}" if exc.fix else ""), severity="error", timeout=8, markup=False)
            return None
        path = Path(self.query_one("#plan-path", Input).value.strip() or "experiments/my-study.toml")
        path = path if path.is_absolute() else self.root / path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(tomli_w.dumps(raw), encoding="utf-8")
        except OSError as exc:  # a full disk, a read-only folder: said, and the app goes on
            self.notify(f"cannot save {path}: {exc.strerror or exc}", severity="error", timeout=8, markup=False)
            return None
        return path

    def action_save(self) -> None:
        path = self.save()
        if path:
            self.notify(f"saved {path}", markup=False)

    def action_launch(self) -> None:
        path = self.save()
        if path:
            self._launch(path)

    @work(thread=True, exclusive=True, group="launch")
    def _launch(self, path: Path) -> None:
        from stilts_tui.runner.control import launch
        from stilts_tui.runner.options import RunnerOptions, with_executor
        from stilts_tui.runner.preflight import preflight
        from stilts_tui.sweep.placement import runs_for
        from stilts_tui.sweep.spec import load_spec

        db = self.app.db
        try:
            spec = load_spec(path)
            runs = runs_for(spec, db)
            options = with_executor(RunnerOptions(), spec)
            done = {r["run_id"] for r in (self.app.snapshot.records if self.app.snapshot else [])
                    if r.get("status") == RunStatus.FINISHED}
            preflight(runs, db, options, done)  # what would fail every run: refused here, said once
            pid = launch(db, spec.name, runs, options, str(path))
        except StiltsError as exc:
            self.app.call_from_thread(self.notify, exc.problem + (f"\n{exc.fix}" if exc.fix else ""), markup=False, severity="error",
                                      timeout=8)
            return
        self.app.call_from_thread(self.notify, f"launched {spec.name}: {len(runs)} runs (runner pid {pid})", markup=False)
        self.app.call_from_thread(self._show_runs)

    def _show_runs(self) -> None:
        self.app.switch_mode("runs")
