"""What screens ask of the app. They bubble up from the screen to the App, which holds the
records and the screen stack, so a screen needs no handle on the App's internals."""

from __future__ import annotations

from textual.message import Message


class OpenRun(Message):
    """Open the detail of `run_id` (the newest record the app holds of it)."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id


class ShowNewest(Message):
    """A screen whose widgets now exist asks to be shown the newest snapshot (the app calls its
    `show`): on mount, and when it becomes the current screen again."""
