"""Handing a worker thread's result back to the app's thread, safely.

A thread may finish after the user quit (or after the screen it drew for was taken down): its
result is then dropped, not shown on widgets that no longer exist — a late `query_one` would
raise NoMatches and fail the worker, which Textual turns into a crash on the way out."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from textual.dom import DOMNode

T = TypeVar("T")


def live(node: DOMNode) -> bool:
    """The app still runs and `node` is still in its DOM."""
    return node.app.is_running and node.is_attached


def deliver(node: DOMNode, callback: Callable[..., object], *args: object) -> None:
    """From a worker thread: run `callback(*args)` on the app's thread, unless `node` is gone."""
    def on_app_thread() -> None:
        if live(node):
            callback(*args)

    node.app.call_from_thread(on_app_thread)


def ask(node: DOMNode, callback: Callable[[], T]) -> T | None:
    """From a worker thread: `callback()`'s value, computed on the app's thread; None when
    `node` is gone."""
    return node.app.call_from_thread(lambda: callback() if live(node) else None)
