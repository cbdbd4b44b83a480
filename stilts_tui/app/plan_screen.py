"""Plan: edit any spec the CLI accepts (name, description, model, data dir, task files, where the
runs go, intermediates / targets / probes, the grid and [intermediate] in fields; every other key,
such as [tasks.X], [train] and [restarts], in a TOML box checked live), see the number of runs,
how many are done and the estimated device-hours, save it (an opened spec keeps its comments) and
launch it after the checks that would otherwise fail every run."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING

import tomlkit
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Select, Static, TextArea

from stilts_tui.app.dialogs import ConfirmScreen, PathPicker
from stilts_tui.app.format import app_words, esc
from stilts_tui.app.threads import ask, deliver
from stilts_tui.app.tick_list import TickList
from stilts_tui.errors import StiltsError
from stilts_tui.fileio import atomic_write
from stilts_tui.sweep.naming import slug
from stilts_tui.sweep.spec import PAPER_GRID
from stilts_tui.sweep.spec_edit import (
    FORM_AXES,
    SpecForm,
    form_of,
    numbers,
    raw_of,
    rebase,
    shown,
    spec_text,
)

if TYPE_CHECKING:
    from stilts_tui.app.app import StiltsApp
    from stilts_tui.ops.forecast import PlanForecast

# The [tasks.X] keys specs set most (train_size above all): form fields over the TOML box's tables.
TASK_FIELDS = ("train_size", "epochs", "max_length", "batch_size")
EXECUTOR_CHOICES = [("local (this machine)", "local"), ("slurm (jobs via submitit)", "slurm")]
LISTS = ("intermediates", "targets", "probes")


def spec_files(root: Path) -> list[Path]:
    return sorted((root / "experiments").glob("*.toml")) if (root / "experiments").is_dir() else []


class PlanScreen(Screen):
    if TYPE_CHECKING:  # the app this screen belongs to, for the type checker
        app: StiltsApp

    # priority: an Input would otherwise take ctrl+f (delete word) before the screen sees it
    BINDINGS = [
        Binding("ctrl+s", "save", "Save spec", id="plan.save", priority=True),
        Binding("ctrl+l", "launch", "Launch", id="plan.launch", priority=True),
        Binding("ctrl+o", "open", "Open…", id="plan.open", priority=True),
        Binding("ctrl+t", "add_task_file", "Add task file…", id="plan.task_file", priority=True),
        Binding("ctrl+f", "search", "Search tasks", id="plan.search", priority=True),
        Binding("ctrl+r", "forecast", "Forecast", id="plan.forecast", priority=True, show=False),
    ]

    def __init__(self, root: Path | None = None) -> None:
        super().__init__(id="plan")
        self._root_given = root
        self.root = root or Path.cwd()               # the app's folder once mounted (on_mount)
        self.base = self.root / "experiments"      # relative paths in the form are relative to this
        self.doc: tomlkit.TOMLDocument | None = None  # the opened spec: its comments and layout
        self.opened: Path | None = None
        self.user_tasks: list[str] = []
        self._study_name = "my-study"
        self._clean: tuple | None = None  # the form as last opened or saved: what "unsaved edits" differ from

    def compose(self) -> ComposeResult:
        yield Static("", id="plan-status")
        with VerticalScroll(id="plan-body"):
            with Horizontal(classes="row"):
                yield Label("open", classes="key")
                yield Input("", placeholder="a spec's path, then enter (ctrl+o: pick one)", id="plan-open")
            with Horizontal(classes="row"):
                yield Label("name", classes="key")
                yield Input("my-study", id="plan-name")
                yield Label("model", classes="key")
                yield Input("roberta-large", placeholder="hub id, local folder or minilm", id="plan-model")
            with Horizontal(classes="row"):
                yield Label("about", classes="key")
                yield Input("", placeholder="a one-line description", id="plan-description")
            with Horizontal(classes="row"):
                yield Label("data dir", classes="key")
                yield Input("", placeholder="folder with the release files (relative: to the spec's folder)", id="plan-data")
            with Horizontal(classes="row"):
                yield Label("task files", classes="key")
                yield Input("", placeholder="your task TOML files, comma-separated (ctrl+t: pick one)", id="plan-task-files")
            with Horizontal(classes="row"):
                yield Label("executor", classes="key")
                yield Select(EXECUTOR_CHOICES, value="local", allow_blank=False, id="plan-executor")
                yield Label("partition", classes="key")
                yield Input("", placeholder="Slurm: the cluster's default", id="plan-partition", disabled=True)
            yield Input(placeholder="search tasks (ctrl+f)", id="plan-search")
            with Horizontal(id="plan-lists"):
                for key in LISTS:
                    with Vertical():
                        yield Label(key)
                        yield TickList(id=f"plan-{key}")
            forecast = Static("", id="plan-forecast", markup=False)
            forecast.display = False  # until ctrl+r asks for one
            yield forecast
            yield Label("target grid: every combination is one run (blank: not an axis)", classes="section")
            for pair in (FORM_AXES[:2], FORM_AXES[2:]):
                with Horizontal(classes="row grid-row"):
                    for key in pair:
                        yield Label(key.replace("_", " "), classes="key")
                        yield Input(shown(PAPER_GRID[key]), id=f"plan-grid-{key}")
            yield Label("[intermediate]: intermediates run once (blank: the task's or study's own)", classes="section",
                        markup=False)
            with Horizontal(classes="row"):
                for key in FORM_AXES:
                    yield Label(key.replace("_", " "), classes="key")
                    yield Input("", id=f"plan-inter-{key}")
            yield Label("[tasks.X]: one task's own settings, kept in the TOML box below (blank: the task's default)",
                        classes="section", markup=False)
            with Horizontal(classes="row"):
                yield Label("task", classes="key")
                yield Select([], prompt="a chosen task", id="plan-task-pick")
            for pair in (TASK_FIELDS[:2], TASK_FIELDS[2:]):
                with Horizontal(classes="row grid-row"):
                    for key in pair:
                        yield Label(key.replace("_", " "), classes="key")
                        yield Input("", placeholder="the task's own", id=f"plan-task-{key}", classes="task-field")
            yield Label("every other key as TOML: more [tasks.X] overrides, [train], [restarts], zero_shot, study… "
                        "(checked live)", classes="section", markup=False)
            yield TextArea("", id="plan-toml", language=None)
            with Horizontal(classes="row"):
                yield Label("save as", classes="key")
                yield Input("experiments/my-study.toml", id="plan-path")
        yield Footer()

    def on_mount(self) -> None:
        self.root = self._root_given or self.app.root  # a mode screen is built without one
        self.base = self.root / "experiments"
        self._refill({"intermediates": ["none"], "targets": ["rte"], "probes": []})
        self._focus_lists()
        self._mark_clean()
        launched = last_launched(self.app.db)
        if launched is None:
            self.recount()
            return
        try:  # where the study was left: the spec last launched on this results file
            self.load(launched)
        except (OSError, tomlkit.exceptions.TOMLKitError, StiltsError):
            self.recount()  # moved or broken since: the defaults, and ctrl+o says what is wrong with it
        else:
            self.notify(f"Plan: the spec last launched on {self.app.db.name}, {_relative(launched, self.root)} "
                        "(ctrl+o opens another)", markup=False)

    def _focus_lists(self) -> None:
        """Keys go to a list, never to a text field the user has not entered (Tab or a click
        enters one, Escape leaves it): 1 / 2 / 3 and q then always reach the app."""
        self.query_one("#plan-targets", TickList).focus()

    # -------------------------------------------------------------- unsaved edits

    def _form_state(self) -> tuple:
        """Everything the form holds that a save would write (the search and "open" boxes are
        not part of the spec)."""
        inputs = tuple((i.id, i.value) for i in self.query(Input)
                       if i.id not in ("plan-search", "plan-open") and not (i.id or "").startswith("plan-task-"))
        return (inputs, self.query_one("#plan-executor", Select).value, tuple(map(tuple, self._chosen().values())),
                self.query_one("#plan-toml", TextArea).text)

    def _mark_clean(self) -> None:
        self._clean = self._form_state()

    @property
    def dirty(self) -> bool:
        """The form differs from the spec last opened or saved (or from the defaults)."""
        return self._clean is not None and self._form_state() != self._clean

    def discard_then(self, then: Callable[[], object], doing: str) -> None:
        """Run `then` at once when nothing is unsaved; else ask first, saying what is lost."""
        if not self.dirty:
            then()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                then()
        self.app.push_screen(ConfirmScreen("Discard changes?", f"The spec in the Plan screen has unsaved edits; "
                                           f"{doing} loses them (n, then ctrl+s, saves them first).", "Discard"),
                             answered)

    # -------------------------------------------------------------- task lists

    def _chosen(self) -> dict[str, list[str]]:
        return {key: list(self.query_one(f"#plan-{key}", TickList).selected) for key in LISTS}

    def _refill(self, chosen: dict[str, list[str]] | None = None) -> None:
        """Every list: the package's tasks, the task files' tasks and any chosen name (kept, even
        unknown, so a spec is never changed behind the user's back), filtered by the search."""
        from stilts_tui.tasks import BUILTIN_NAMES

        chosen = chosen if chosen is not None else self._chosen()
        needle = self.query_one("#plan-search", Input).value.strip().lower()
        for key in LISTS:
            picked = chosen.get(key, [])
            names = [*(["none"] if key == "intermediates" else []), *self.user_tasks, *BUILTIN_NAMES]
            names += [n for n in picked if n not in names]
            lst = self.query_one(f"#plan-{key}", TickList)
            with lst.prevent(TickList.SelectedChanged):
                lst.clear_options()
                lst.add_options([(Text(n), n) for n in names if needle in n or n in picked])  # a name is not markup
                for name in picked:  # in the spec's order, which the selection keeps
                    lst.select(name)
        self._tasks_chosen()

    def _register_task_files(self, files: list[str]) -> list[str]:
        """The tasks the task files describe (registered for this process); problems are said."""
        from stilts_tui.tasks import register_task_file

        names = []
        for f in files:
            try:
                names.append(register_task_file(self.base / f).name)
            except StiltsError as exc:
                self.notify(f"task file {f}: {exc.problem}", severity="error", markup=False)
        return names

    def _task_files(self) -> list[str]:
        text = self.query_one("#plan-task-files", Input).value
        return [p.strip() for p in text.split(",") if p.strip()]

    @on(Input.Submitted, "#plan-task-files")
    @on(Input.Blurred, "#plan-task-files")
    def _task_files_changed(self) -> None:
        names = self._register_task_files(self._task_files())
        if names != self.user_tasks:
            self.user_tasks = names
            self._refill()

    def action_add_task_file(self) -> None:
        self.app.push_screen(PathPicker("Add a task file (.toml)", self.base / "tasks", self.root), self._add_task_file)

    def _add_task_file(self, path: Path | None) -> None:
        if path is None:
            return
        files = self._task_files()
        rel = _relative(path, self.base)
        if rel not in files:
            self.query_one("#plan-task-files", Input).value = ", ".join([*files, rel])
        self._task_files_changed()

    # -------------------------------------------------------------- the spec in the form

    def form(self) -> SpecForm:
        def text(wid: str) -> str:
            return self.query_one(wid, Input).value

        grid = {k: v for k in FORM_AXES if (v := numbers(text(f"#plan-grid-{k}"), k))}
        inter = {}
        for key in FORM_AXES:
            values = numbers(text(f"#plan-inter-{key}"), key)
            if len(values) > 1:
                raise StiltsError(f"[intermediate] {key}: one value, not {len(values)}", "intermediates run once")
            if values:
                inter[key] = values[0]
        chosen = self._chosen()
        return SpecForm(name=text("#plan-name"), description=text("#plan-description"), model=text("#plan-model"),
                        data_dir=text("#plan-data"), task_files=self._task_files(),
                        executor=str(self.query_one("#plan-executor", Select).value), partition=text("#plan-partition"),
                        intermediates=chosen["intermediates"], targets=chosen["targets"], probes=chosen["probes"],
                        grid=grid, intermediate=inter, rest=self.query_one("#plan-toml", TextArea).text)

    def raw_spec(self) -> dict:
        return raw_of(self.form(), self.doc.unwrap() if self.doc is not None else None)

    def load(self, path: Path) -> None:
        """Open a spec: every key lands in a field or in the TOML box. Raises OSError or
        tomlkit's parse error; the callers say them."""
        doc = tomlkit.parse(path.read_text(encoding="utf-8"))
        form = form_of(doc)  # before the screen takes the spec: one it refuses leaves the open one as it was
        self.doc, self.opened, self.base = doc, path.resolve(), path.resolve().parent
        self._show_form(form, form.name or path.stem, _relative(path.resolve(), self.root))

    def _show_form(self, form: SpecForm, name: str, save_as: str) -> None:
        self.user_tasks = self._register_task_files(form.task_files)
        values = {"#plan-name": name, "#plan-description": form.description, "#plan-model": form.model,
                  "#plan-data": form.data_dir, "#plan-task-files": ", ".join(form.task_files),
                  "#plan-partition": form.partition, "#plan-search": "", "#plan-path": save_as}
        values |= {f"#plan-grid-{k}": shown(form.grid[k]) if k in form.grid else "" for k in FORM_AXES}
        values |= {f"#plan-inter-{k}": shown(form.intermediate[k]) if k in form.intermediate else "" for k in FORM_AXES}
        for wid, value in values.items():
            self.query_one(wid, Input).value = value
        self._study_name = name
        self.query_one("#plan-executor", Select).value = form.executor if form.executor in ("local", "slurm") else "local"
        self.query_one("#plan-toml", TextArea).text = form.rest
        self._refill({"intermediates": form.intermediates, "targets": form.targets, "probes": form.probes})
        self._mark_clean()
        # The count of the spec shown before would read as this one's until the new count lands.
        self.query_one("#plan-status", Static).update(f"[dim]counting the runs of {esc(name)}…[/dim]")
        self.recount()

    # -------------------------------------------------------------- one task's settings

    def _task_names(self) -> list[str]:
        chosen = self._chosen()
        return [n for n in dict.fromkeys([*chosen["intermediates"], *chosen["targets"], *chosen["probes"]]) if n != "none"]

    @on(TickList.SelectedChanged)
    def _tasks_chosen(self) -> None:
        pick = self.query_one("#plan-task-pick", Select)
        names = self._task_names()
        current = pick.value if isinstance(pick.value, str) else None
        with pick.prevent(Select.Changed):
            pick.set_options([(Text(n), n) for n in names])  # a name is not markup
            if current in names or names:
                pick.value = current if current in names else names[0]
        self._fill_task_fields()

    @on(Select.Changed, "#plan-task-pick")
    def _fill_task_fields(self) -> None:
        """The picked task's [tasks.X] values from the TOML box, in its fields."""
        table = self._task_table(self._picked_task())
        for key in TASK_FIELDS:
            box = self.query_one(f"#plan-task-{key}", Input)
            value = table.get(key) if table is not None else None
            text = "" if value is None else shown(value)
            if box.value != text:
                box.value = text

    def _picked_task(self) -> str | None:
        value = self.query_one("#plan-task-pick", Select).value
        return value if isinstance(value, str) else None

    def _task_table(self, name: str | None) -> dict | None:
        if name is None:
            return None
        try:
            tasks = tomlkit.parse(self.query_one("#plan-toml", TextArea).text).unwrap().get("tasks", {})
        except tomlkit.exceptions.TOMLKitError:  # the box's own check says what is wrong
            return None
        table = tasks.get(name) if isinstance(tasks, dict) else None
        return table if isinstance(table, dict) else {}

    @on(Input.Changed, ".task-field")
    def _task_field_changed(self, event: Input.Changed) -> None:
        """A task field typed into: its key written to (or, blank, removed from) the TOML box's
        [tasks.X] table; the box's live check then says whether the value is right."""
        name, key = self._picked_task(), (event.input.id or "").removeprefix("plan-task-")
        box = self.query_one("#plan-toml", TextArea)
        try:
            doc = tomlkit.parse(box.text)
        except tomlkit.exceptions.TOMLKitError:
            return
        if name is None or key not in TASK_FIELDS:
            return
        if _set_task_key(doc, name, key, _task_value(event.value)):
            box.text = doc.as_string()

    # -------------------------------------------------------------- live count

    @on(Input.Changed)
    @on(TickList.SelectedChanged)
    @on(TextArea.Changed)
    def _changed(self, event) -> None:
        if getattr(event, "input", None) is not None and (event.input.id in ("plan-search", "plan-path", "plan-open")
                                                         or "task-field" in event.input.classes):
            return  # not the spec, or (a task field) the spec through the TOML box, whose change counts
        if isinstance(event, TextArea.Changed) and self.focused is event.text_area:
            self._fill_task_fields()  # typed into the box: the task fields follow it
        self.recount()

    def recount(self) -> None:
        # The plan's estimate is the runner's, which reads the store's own records.
        self._count([dict(r.record) for r in self.app.records()])

    @work(thread=True, exclusive=True, group="plan")
    def _count(self, records: list[dict]) -> None:
        from textual.worker import get_current_worker

        from stilts_tui.ops.plan import plan_spec
        from stilts_tui.runner.rough_estimate import rough_estimate
        from stilts_tui.sweep.spec import parse_spec

        worker = get_current_worker()
        try:
            raw = ask(self, self.raw_spec)
            if raw is None:  # the screen went away meanwhile
                return
            plan = plan_spec(parse_spec(raw, base=self.base), self.app.db, records=records)
        except StiltsError as exc:
            text = (f"[b]spec:[/b] {esc(app_words(exc.problem.removeprefix('spec: ')))}"
                    + (f" — {esc(app_words(exc.fix))}" if exc.fix else ""))
        else:
            counts = (f"[b]{len(plan.runs)} runs[/b] ({plan.intermediates} intermediate)  "
                      f"done {plan.done}  to run {len(plan.todo)}")
            disk = plan.disk()
            data = plan.data_problem()
            if data:  # an estimate for runs that cannot start would mislead: the problem instead
                counts += f"  [b]⚠ {esc(data)}[/b]"
            else:
                estimate = plan.estimate()
                rough = rough_estimate(plan.todo) if not estimate.measured and plan.todo else None
                counts += f"  {esc(rough.describe() if rough else estimate.describe())}   ctrl+s save · ctrl+l launch"
            # Not enough disk comes first: on a narrow terminal the second line may not show.
            text = (f"[b red]⚠ not enough disk:[/] {esc(disk.describe())}\n{counts}" if disk.short
                    else f"{counts}\ndisk: {esc(disk.describe())}")
        deliver(self, self._show_count, worker, text)

    def _show_count(self, worker, text: str) -> None:
        # A newer count cancelled this one while it ran (a thread cannot be stopped): its figure is
        # stale. Checked here, on the app's thread, where cancellation happens, so no race.
        if not worker.is_cancelled:
            self.query_one("#plan-status", Static).update(text)

    # -------------------------------------------------------------- fields that move others

    @on(Select.Changed, "#plan-executor")
    def _executor(self, event: Select.Changed) -> None:
        self.query_one("#plan-partition", Input).disabled = event.value != "slurm"
        self.recount()

    @on(Input.Changed, "#plan-name")
    def _renamed(self, event: Input.Changed) -> None:
        """"save as" follows the name while its file name is the name's (a path typed by hand
        stays)."""
        field = self.query_one("#plan-path", Input)
        path = Path(field.value.strip() or "experiments/x.toml")
        if path.stem == slug(self._study_name) and event.value.strip():
            field.value = str(path.with_name(slug(event.value.strip()) + ".toml"))
        self._study_name = event.value.strip()

    @on(Input.Changed, "#plan-search")
    def _search(self) -> None:
        self._refill()

    def action_search(self) -> None:
        self.query_one("#plan-search", Input).focus()

    # -------------------------------------------------------------- open

    @on(Input.Submitted, "#plan-open")
    def _open_typed(self, event: Input.Submitted) -> None:
        path = Path(event.value.strip()).expanduser()
        self.discard_then(lambda: self._open(path if path.is_absolute() else self.root / path), "opening another spec")

    def action_open(self) -> None:
        self.discard_then(lambda: self.app.push_screen(PathPicker("Open a spec (.toml)", self.root / "experiments",
                                                                  self.root), self._open), "opening another spec")

    def _open(self, path: Path | None) -> None:
        # Back from the dialog on a list, not in the field focused before: the next screen key
        # (2, q) must not type into the spec.
        self._focus_lists()
        if path is None:
            return
        try:
            self.load(path)
        except OSError as exc:
            self.notify(f"cannot open {path}: {exc.strerror or exc}", severity="error", markup=False)
        except tomlkit.exceptions.TOMLKitError as exc:
            self.notify(f"{path} is not valid TOML: {exc}", severity="error", markup=False)
        except StiltsError as exc:  # a key of the wrong kind (`grid = 5`)
            self.notify(f"{path}: {exc.problem.removeprefix('spec: ')}" + (f"\nfix: {exc.fix}" if exc.fix else ""),
                        severity="error", timeout=8, markup=False)
        else:
            self.notify(f"opened {path}", markup=False)

    # -------------------------------------------------------------- save and launch

    def target(self) -> Path:
        path = Path(self.query_one("#plan-path", Input).value.strip() or f"experiments/{slug(self._study_name)}.toml")
        return (path if path.is_absolute() else self.root / path).resolve()

    def save(self) -> Path | None:
        """Write the spec where "save as" says (its relative paths moved to point at the same
        places from there); None, with the reason said, when it is not a valid spec."""
        path = self.target()
        try:
            raw = rebase(self.raw_spec(), self.base, path.parent)
            from stilts_tui.sweep.spec import parse_spec

            parse_spec(raw, base=path.parent)
        except StiltsError as exc:
            self.notify(exc.problem + (f"\n{exc.fix}" if exc.fix else ""), severity="error", timeout=8, markup=False)
            return None
        text = spec_text(raw, self.doc)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda f: f.write(text.encode("utf-8")))
        except OSError as exc:  # a full disk, a read-only folder: said, and the app goes on
            self.notify(f"cannot save {path}: {exc.strerror or exc}", severity="error", timeout=8, markup=False)
            return None
        if self.base != path.parent:
            self.query_one("#plan-data", Input).value = raw.get("data_dir", "")
            self.query_one("#plan-task-files", Input).value = ", ".join(raw.get("task_files", []))
        self.doc, self.opened, self.base = tomlkit.parse(text), path, path.parent
        self._mark_clean()
        return path

    def _confirmed_save(self, then) -> None:
        """Save, asking first when that would overwrite a file other than the one opened."""
        path = self.target()
        if path.exists() and path != self.opened:
            def answered(yes: bool | None) -> None:
                if yes:
                    then(self.save())
            self.app.push_screen(ConfirmScreen(f"Overwrite {path}?", "It is not the spec you opened.", "Overwrite"),
                                 answered)
        else:
            then(self.save())

    def action_save(self) -> None:
        def saved(path: Path | None) -> None:
            if path:
                self.notify(f"saved {path}", markup=False)
        self._confirmed_save(saved)

    def action_launch(self) -> None:
        def saved(path: Path | None) -> None:
            if path:
                self._launch(path)
        self._confirmed_save(saved)

    @work(thread=True, exclusive=True, group="launch")
    def _launch(self, path: Path) -> None:
        from stilts_tui.ops.launch import prepare_launch, start
        from stilts_tui.runner.options import RunnerOptions
        from stilts_tui.sweep.spec import load_spec

        db = self.app.db
        try:
            spec = load_spec(path)
            launch = prepare_launch(spec, db, RunnerOptions(), path)  # what would fail every run: refused here, said once
            plan = launch.plan
            if launch.nothing_to_run():  # a runner would have nothing to do
                self.app.call_from_thread(self.notify, f"{launch.nothing_to_run()}. Their results are on the Results "
                                          "screen (3); change the grid or the tasks for new runs.", markup=False,
                                          timeout=8)
                return
            pid = start(launch)
        except StiltsError as exc:  # said in the app's words: its fields, not the CLI's options
            self.app.call_from_thread(self.notify, app_words(exc.problem + (f"\n{exc.fix}" if exc.fix else "")),
                                      markup=False, severity="error", timeout=8)
            return
        self.app.call_from_thread(self.notify, f"launched {spec.name}: {len(plan.todo)} of {len(plan.runs)} runs to run "
                                  f"(runner pid {pid})", markup=False)
        for warning in launch.warnings:  # degenerate runs, launched all the same
            self.app.call_from_thread(self.notify, warning, markup=False, severity="warning", timeout=12)
        deliver(self, self._show_runs)

    def _show_runs(self) -> None:
        self.app.switch_mode("runs")

    def action_forecast(self) -> None:
        """Save, then rank each target's intermediates (TextEmb; LogME where checkpoints exist)."""
        def saved(path: Path | None) -> None:
            if path:
                self.notify("forecasting: features of each task (a minute the first time, cached after)",
                            markup=False)
                self._forecast(path)
        self._confirmed_save(saved)

    @work(thread=True, exclusive=True, group="forecast")
    def _forecast(self, path: Path) -> None:
        from stilts_tui.ops.forecast import plan_forecast

        try:
            made = plan_forecast(path, self.app.db)
        except StiltsError as exc:
            self.app.call_from_thread(self.notify, exc.problem + (f"\n{exc.fix}" if exc.fix else ""), markup=False,
                                      severity="error", timeout=8)
            return
        deliver(self, self._show_forecast, made)

    def _show_forecast(self, made: PlanForecast) -> None:
        panel = self.query_one("#plan-forecast", Static)
        panel.update("\n".join(forecast_lines(made)))
        panel.display = True


def last_launched(db: Path) -> Path | None:
    """The spec file of the sweep last started on `db` (the runner's state names its sweep file,
    which names the spec), when it is still there."""
    from stilts_tui.runner.files import RunnerFiles
    from stilts_tui.runner.sweepfile import sweep_spec_path

    state = RunnerFiles(db).read_state() or {}
    spec = sweep_spec_path(state.get("sweep_file") if isinstance(state, dict) else None)
    return Path(spec) if spec and Path(spec).is_file() else None


def _set_task_key(doc: tomlkit.TOMLDocument, name: str, key: str, value: object) -> bool:
    """Set [tasks.<name>] <key> in `doc` (None: remove it, and the tables it leaves empty); False
    when the document already says so, or its `tasks` is not a table (the box's check names it)."""
    tasks = doc.get("tasks")
    if tasks is not None and not isinstance(tasks, MutableMapping):
        return False
    table = tasks.get(name) if tasks is not None else None
    if table is not None and not isinstance(table, MutableMapping):
        return False
    if (table.get(key) if table is not None else None) == value:
        return False  # as the box has it already (the field was just filled from it)
    if value is None:
        if tasks is None or table is None or key not in table:
            return False
        del table[key]
        if not table:
            del tasks[name]
        if not tasks:
            del doc["tasks"]
        return True
    if tasks is None:
        doc["tasks"] = tasks = tomlkit.table(is_super_table=True)
    if table is None:
        tasks[name] = table = tomlkit.table()
    table[key] = value
    return True


def _task_value(text: str) -> int | list[int] | str | None:
    """A task field's text as TOML would hold it: blank None, whole numbers as ints (a list for
    an intermediate's sizes), anything else as typed, for the spec's check to name."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        return None
    try:
        values = [int(p.replace("_", "")) for p in parts]
    except ValueError:
        return text.strip()
    return values[0] if len(values) == 1 else values


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def forecast_lines(made: PlanForecast) -> list[str]:
    """One line per target and method, best first, then what each intermediate's target runs
    would cost: the run-hours dropping it saves."""
    from stilts_tui.analysis.forecast_data import METHOD_LABEL

    lines = []
    for r in made.forecast.rankings:
        head = f"{r.target:<14} {METHOD_LABEL[r.method]:<8}"
        if r.not_applicable or not r.scores:
            lines.append(f"{head} {r.not_applicable or 'no checkpoint yet: ' + ', '.join(r.missing)}")
            continue
        ranked = " > ".join(f"{c} {r.scores[c]:.3g}" for c in r.order())
        ref = f"  (none {r.reference:.3g})" if r.reference is not None else ""
        gone = f"  [no checkpoint: {', '.join(r.missing)}]" if r.missing else ""
        lines.append(f"{head} {ranked}{ref}{gone}")
    costs = [f"{c} {'?' if h is None else f'{h:.2f}'} h" for c, h in made.hours.items() if c != "none"]
    if costs:
        lines.append("dropping an intermediate saves its target runs: " + ", ".join(costs) + "  (? : not estimable yet)")
    return lines
