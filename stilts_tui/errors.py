"""User-facing errors: one message naming the problem, one naming the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """'did you mean 'x'?' for the closest of ``choices`` to a mistyped ``word``, or ''."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=3, cutoff=0.6)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def unknown_keys(unknown: Iterable[str], allowed: Iterable[str]) -> str:
    """"unknown key 'x' (did you mean 'y'?)": each unknown key with the closest allowed one."""
    allowed = list(allowed)
    words = []
    for key in sorted(unknown):
        hint = did_you_mean(key, allowed)
        words.append(f"{key!r} ({hint})" if hint else repr(key))
    return f"unknown key{'s' if len(words) > 1 else ''} {', '.join(words)}"


class StiltsError(Exception):
    """An error caused by input the user can fix; the CLI prints it without a traceback."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem}\n  fix: {fix}")

    def with_fix(self, fix: str) -> StiltsError:
        """The same error with a better fix (the caller knows more than the raiser)."""
        clone = type(self).__new__(type(self))  # not copy.copy: it re-calls __init__ with args
        clone.__dict__.update(self.__dict__)
        clone.fix = fix
        clone.args = (f"{self.problem}\n  fix: {fix}",)
        return clone

    def one_line(self) -> str:
        return self.problem + (f" (fix: {self.fix})" if self.fix else "")


class DataError(StiltsError):
    """A data file that cannot be read as the format it should be in."""

    def __init__(self, path: object, problem: str, line: int | None = None, fix: str | None = None):
        where = f"{path}" if line is None else f"{path}, line {line}"
        super().__init__(f"{where}: {problem}", fix)
        self.path = str(path)
        self.line = line


class SpecError(StiltsError):
    """An experiment spec (or task definition) with a wrong key or value."""
