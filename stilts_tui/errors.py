"""User-facing errors: one message naming the problem, one naming the fix."""

from __future__ import annotations


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
