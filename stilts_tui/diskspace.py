"""A full disk, recognised wherever it surfaces, and said the same way everywhere.

Writes on a full disk fail with ENOSPC (or EDQUOT, over a quota), sometimes wrapped by a library
(`datasets`, `safetensors`) into an error of its own whose message still says "No space left on
device". `is_disk_full` looks through the exception chain for either. `DiskFullError` is what
stilts raises instead of a traceback: where the write failed, and how much is free there.

`inject` is the fault-injection hook of the tests (STILTS_FAULT_ENOSPC): a named write point
raises ENOSPC, as a full disk would, until a "freed" file exists. It does nothing otherwise."""

from __future__ import annotations

import errno
import functools
import os
import shutil
from pathlib import Path

from stilts_tui.errors import StiltsError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_TEXTS = ("no space left on device", "disk quota exceeded")


def is_disk_full(exc: BaseException | None) -> bool:
    """Is this error (or one it was raised from) a full disk or an exceeded quota?"""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, DiskFullError):
            return True
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        if any(t in str(exc).lower() for t in _TEXTS):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def failed_path(exc: BaseException | None) -> str | None:
    """The file a failed write named, from the first OSError in the chain that names one."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, DiskFullError):
            return exc.path
        if isinstance(exc, OSError) and exc.filename:
            return str(exc.filename)
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def existing(path: str | Path) -> Path:
    """The path itself, or its nearest folder that exists (what disk_usage can ask about)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def free_bytes(path: str | Path) -> int | None:
    """Bytes free to this user on the filesystem holding `path` (None when it cannot be asked)."""
    try:
        return shutil.disk_usage(existing(path)).free
    except OSError:
        return None


def mount_point(path: str | Path) -> Path:
    """The mount point of the filesystem holding `path`: what a user frees space on."""
    p = existing(path)
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


class DiskFullError(StiltsError):
    """A write failed because the disk (or the user's quota) is full."""

    def __init__(self, path: str | Path, what: str = "write") -> None:
        self.path = str(path)
        self.what = what
        self.free = free_bytes(path)
        where = mount_point(path)
        super().__init__(f"the disk is full: could not {what} {path} ({fmt_bytes(self.free)} free on {where})",
                         f"free space on {where}; the results file is intact and `stilts resume` continues the sweep")

    @classmethod
    def from_os_error(cls, exc: BaseException, path: str | Path, what: str = "write") -> DiskFullError:
        return cls(failed_path(exc) or path, what)

    @classmethod
    def reported(cls, path: str | Path, message: str) -> DiskFullError:
        """What a run's worker reported (its own message names the file), seen from `path`."""
        exc = cls(path)
        if message:
            exc.problem = message.split(" (fix: ")[0]
            exc.args = (f"{exc.problem}\n  fix: {exc.fix}",)
        return exc


# ------------------------------------------------------------------ fault injection (tests)


@functools.cache
def _injected(spec: str) -> dict[str, int]:
    """STILTS_FAULT_ENOSPC="store:3,state,checkpoint": point -> writes that succeed first."""
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        point, _, after = part.partition(":")
        out[point] = int(after or 0)
    return out


_calls: dict[str, int] = {}
_room_made = False


def room_made() -> None:
    """The runner let go of its ballast: small writes (its state file) fit again, as on a real disk."""
    global _room_made
    _room_made = True


def reset_injection() -> None:
    global _room_made
    _calls.clear()
    _room_made = False


def inject(point: str, path: str | Path = "") -> None:
    """Tests: raise ENOSPC at a named write point (store, state, run_file, events, checkpoint,
    cache), after the number of successful writes the spec allows, for as long as the file named
    by STILTS_FAULT_ENOSPC_FREED does not exist ("space freed")."""
    spec = os.environ.get("STILTS_FAULT_ENOSPC")
    if not spec:
        return
    points = _injected(spec)
    if point not in points:
        return
    _calls[point] = _calls.get(point, 0) + 1
    freed = os.environ.get("STILTS_FAULT_ENOSPC_FREED")
    if point == "state" and _room_made:
        return
    if _calls[point] > points[point] and not (freed and Path(freed).exists()):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC) + " (injected)", str(path) or None)
