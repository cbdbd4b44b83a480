"""Small modal dialogs: a yes/no confirmation (before anything that loses work or overwrites a
file) and a file picker that also takes a typed path."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label, Static

from stilts_tui.app.format import esc


class ConfirmScreen(ModalScreen[bool]):
    """``y`` / Enter on "yes" confirms; ``n`` / Escape cancels. The question says what is lost."""

    BINDINGS = [Binding("y", "answer(True)", "Yes", id="confirm.yes"),
                Binding("n,escape", "answer(False)", "No", id="confirm.no")]

    def __init__(self, question: str, detail: str = "", yes: str = "Yes") -> None:
        super().__init__()
        self.question, self.detail, self.yes = question, detail, yes

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(f"[b]{esc(self.question)}[/b]", id="confirm-question")
            if self.detail:
                yield Static(esc(self.detail), id="confirm-detail")
            with Horizontal(id="confirm-buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="confirm-yes")
                yield Button("Cancel (n)", id="confirm-no")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()  # the safe answer is the default

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def typed_path(text: str, root: Path) -> Path:
    """The path a user typed into a box pre-filled with a folder: an absolute (or ~) path typed
    after the folder is taken as typed (`…/experiments//tmp/s.toml` is `/tmp/s.toml`); a relative
    one is relative to `root`."""
    text = text.strip()
    for start in ("//", "/~"):  # the last place a new absolute path begins
        at = text.rfind(start)
        if at > 0:
            text = text[at + 1:]
    path = Path(text).expanduser()
    return path if path.is_absolute() else root / path


class TomlTree(DirectoryTree):
    """Folders and .toml files only."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and (p.is_dir() or p.suffix == ".toml")]


class PathPicker(ModalScreen[Path | None]):
    """Pick a .toml file in the tree, or type a path (relative to ``root``) and press Enter; a
    typed folder opens in the tree. Built anew each time, so it lists what is on disk now."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="picker.cancel")]

    def __init__(self, title: str, start: Path, root: Path) -> None:
        super().__init__()
        self.title_text, self.start, self.root = title, start if start.is_dir() else root, root

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box"):
            yield Label(self.title_text)
            yield Input(str(self.start) + "/", id="picker-path", select_on_focus=False)
            yield TomlTree(self.start, id="picker-tree")
            yield Label("enter: open the typed path · tab: the tree · escape: cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#picker-path")
    def _typed(self, event: Input.Submitted) -> None:
        path = typed_path(event.value, self.root)
        if path.is_file():
            self.dismiss(path)
        elif path.is_dir():
            self.query_one(TomlTree).path = path
        else:
            self.notify(f"no file or folder at {path}", severity="error", markup=False)

    @on(DirectoryTree.FileSelected)
    def _picked(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(event.path)

    def action_cancel(self) -> None:
        self.dismiss(None)
