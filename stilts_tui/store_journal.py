"""The results file's journal: a status change is one fsync'd line appended beside the file, not
a rewrite of a 150 MB file. The lines are folded into the file in the background and when the
writer closes, so once a runner has ended the file alone holds everything and a plain
`TinyDB(path)` reads it as it always did. (Optuna's `JournalStorage` is the model: an
append-only log of operations, replayed by readers, optuna/storages/journal/_storage.py.)

For a results file `results.json`:

- `results.json`: a plain TinyDB JSON file, only ever replaced whole (`fileio.atomic_write`):
  the state at the last fold.
- `results.json.journal`: a header line naming the base it continues (`identity`: the base's
  size, mtime and a checksum of its last 64 KiB), then one JSON line per committed change, each
  a list of ops: `put` (a whole document), `set` (some fields of one), `del` (a document),
  `drop` (a table). Every op is absolute, never relative ("+1"), so replaying a line the base
  already holds changes nothing: that is what lets a fold copy lines without a stop-the-world.
- `results.json.journal.next`: during a fold only: the journal that continues the new base.

The state is the base plus the journal whose header names that base, else the base alone (a
journal naming another base was folded into it already, or belongs to a file restored by hand).

A change is committed when its line is written and fsync'd: a crash mid-append leaves a torn
last line without its newline, which no reader applies and the next writer drops. A fold
(writer only): serialise the state into a temporary file a chunk at a time (appends go on
between chunks) and fsync it; then, holding the append lock for milliseconds,
write `journal.next` (a header naming the new base, and the lines appended meanwhile), fsync it,
rename the new base into place, rename `journal.next` over the journal (which keeps up to 1 MB
of lines from before the fold as well: harmless to replay, and a reader following the journal a
little behind reads on instead of reading the file again). Killed before the first
rename: the old pair stands. Between the renames: the new base and `journal.next`, which
readers and the next writer use. A reader checks that the base it read is still the file's
after it read the journal, else reads again, so it never pairs a base with the wrong journal."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from stilts_tui.diskspace import DiskFullError, inject, is_disk_full
from stilts_tui.errors import StiltsError
from stilts_tui.fileio import atomic_write, fsync_dir

FORMAT = 1
TAIL = 65536                   # bytes of the base its identity checksums
# Fold once the journal holds FOLD_MIN_BYTES or 1/FOLD_BASE_SHARE of the base, whichever is
# more: readers replay a journal of at most a few MB, and a 150 MB base is rewritten every ~10 MB.
FOLD_MIN_BYTES = 2 * 2**20
FOLD_BASE_SHARE = 16
READ_TRIES = 50
FOLD_CHUNK = 2000              # documents serialised at a time by a fold

Op = list  # [kind, table, doc_id, value]: ["put", "runs", "7", {...}], ["set", "runs", "7", {"status": ...}]
Tables = dict[str, dict[str, Any]]


def journal_path(path: Path) -> Path:
    return path.with_name(path.name + ".journal")


def next_path(path: Path) -> Path:
    return path.with_name(path.name + ".journal.next")


def identity(size: int, mtime_ns: int, tail: bytes) -> list[int]:
    """What names one version of the base: its size, mtime and a checksum of its last bytes (a
    copy with its times kept, `cp -p`, keeps its journal)."""
    return [size, mtime_ns, zlib.crc32(tail[-TAIL:])]


def file_identity(path: Path) -> list[int] | None:
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            fh.seek(max(0, st.st_size - TAIL))
            return identity(st.st_size, st.st_mtime_ns, fh.read())
    except FileNotFoundError:
        return None


def apply_ops(data: Tables, ops: list[Op], changed: set[str] | None = None) -> None:
    """One committed line applied to the tables. With `changed`, a document is replaced rather
    than changed in place (another thread may be reading the old one) and its id recorded."""
    for kind, table, doc_id, value in ops:
        if kind == "drop":
            data.pop(table, None)
            continue
        docs = data.setdefault(table, {})
        if changed is not None:
            changed.add(doc_id)
        if kind == "put":
            docs[doc_id] = value
        elif kind == "set":
            doc = docs.get(doc_id)
            if doc is None:
                continue  # a later line in this journal deleted it
            if changed is None:
                doc.update(value)
            else:
                docs[doc_id] = doc | value
        elif kind == "del":
            docs.pop(doc_id, None)


@dataclass
class JournalRead:
    """The committed lines of one journal file."""

    path: Path
    header: dict
    lines: list[list[Op]] = field(default_factory=list)
    end: int = 0          # bytes up to the end of the last complete line
    size: int = 0         # bytes in the file (more than `end` when its last line is torn)


def read_journal(path: Path) -> JournalRead | None:
    """The journal at `path` (None when there is none). A torn last line (its writer was killed
    mid-append; it was never committed) is left out; a damaged line before it is an error."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    head, sep, rest = raw.partition(b"\n")
    try:
        header = orjson.loads(head) if sep else None
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("stilts_journal") != FORMAT:
        raise StiltsError(f"{path} is not a stilts results journal (its first line is not the header)",
                          journal_fix(path))
    out = JournalRead(path, header, end=len(head) + 1, size=len(raw))
    *complete, _torn = rest.split(b"\n")
    for n, line in enumerate(complete, start=2):
        try:
            ops = orjson.loads(line)["ops"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise StiltsError(f"{path} line {n} is damaged (stilts only ever appends whole lines to it)",
                              journal_fix(path)) from None
        out.lines.append(ops)
        out.end += len(line) + 1
    return out


def journal_fix(path: Path) -> str:
    return (f"move {path} aside: the results file beside it then reads as it was at its last fold (the "
            f"changes since are in the runs' event logs: stilts recover --db {path.with_suffix('')} rebuilds it)")


def journal_for(base: Path, base_id: list[int]) -> JournalRead | None:
    """The journal that continues the base whose identity is `base_id`: the journal, or during
    a fold (or after a writer killed mid-fold) `journal.next`; None when neither names it."""
    # The journal once more at the end: a fold may rename `next` over it between the first two reads.
    for candidate in (journal_path(base), next_path(base), journal_path(base)):
        j = read_journal(candidate)
        if j is not None and j.header.get("base") == base_id:
            return j
    return None


@dataclass
class ReadState:
    """What a reader read: the base's bytes, and the journal that continues it."""

    raw: bytes
    base_id: list[int]
    stat_key: tuple[int, int, int]     # (inode, size, mtime_ns) of the base read
    journal: JournalRead | None


def read_consistent(path: Path) -> ReadState | None:
    """The base and its journal as one consistent pair; None when there is no file. The base is
    read first and held open, then the journal; if the base was replaced meanwhile (a fold), both
    are read again."""
    for _ in range(READ_TRIES):
        try:
            with open(path, "rb") as fh:   # held open while the journal is read: its inode stays its own
                st = os.fstat(fh.fileno())
                raw = fh.read()
                base_id = identity(len(raw), st.st_mtime_ns, raw[-TAIL:])
                journal = journal_for(path, base_id)
                now = _stat_key(path)
        except FileNotFoundError:
            return None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if now == key:
            return ReadState(raw, base_id, key, journal)
    raise StiltsError(f"results file {path} was replaced {READ_TRIES} times while being read",
                      "try again; if this persists, another program is rewriting the file")


class Journal:
    """The writer's side: append committed lines, fold them into the base. Only the holder of
    the store's writer lock makes one."""

    def __init__(self, base: Path, data: Tables) -> None:
        self.base = base
        self.data = data                   # the state: base + every committed line
        self.append_lock = threading.Lock()
        self.fold_lock = threading.Lock()  # one fold or whole write at a time
        self.fd: int | None = None         # the journal, open for appending
        self.size = 0                      # bytes in the journal
        self.id = ""                       # its id, and the length of its header line
        self.header_len = 0
        self.lines: list[bytes] = []       # the journal's lines, to copy on a fold
        self.pending = 0                   # bytes of those not yet in the base
        self.base_size = base.stat().st_size if base.exists() else 0
        self.folder: threading.Thread | None = None
        self.fold_error: BaseException | None = None
        self.folds = 0
        self.broken = False                # a fold failed between its renames: write whole next

    # ---------------------------------------------------------------- appends

    def append(self, ops: list[Op]) -> None:
        """Commit `ops`: one line, written and fsync'd, then applied to the state."""
        line = orjson.dumps({"ops": ops}) + b"\n"
        if self.broken:
            self.write_whole(self.data)
        with self.append_lock:
            try:
                inject("store", self.base)
                if self.fd is None:
                    self._start()
                assert self.fd is not None
                _write_all(self.fd, line, self.size)
            except OSError as exc:
                raise write_error(self.base, exc) from None
            self.size += len(line)
            self.lines.append(line)
            self.pending += len(line)
            apply_ops(self.data, ops)
        if self.pending >= max(FOLD_MIN_BYTES, self.base_size // FOLD_BASE_SHARE):
            self.fold_in_background()

    def _start(self) -> None:
        """A fresh journal continuing the base on disk."""
        jid, header = self._header(file_identity(self.base), None)
        atomic_write(journal_path(self.base), lambda fh: fh.write(header))
        self._open(jid, len(header), [])

    def _open(self, jid: str, header_len: int, lines: list[bytes], fresh: int = 0) -> None:
        """Append to the journal now at the path, which holds `lines`, the last `fresh` of them
        not yet in the base."""
        if self.fd is not None:
            os.close(self.fd)
        self.fd = os.open(journal_path(self.base), os.O_WRONLY | os.O_APPEND)
        self.id, self.header_len = jid, header_len
        self.lines = lines
        self.pending = sum(map(len, lines[len(lines) - fresh:])) if fresh else 0
        self.size = header_len + sum(map(len, lines))

    @staticmethod
    def _header(base_id: list[int] | None, continues: list | None) -> tuple[str, bytes]:
        """A journal's id and header line. `continues` is [the previous journal's id, the offset in
        it where this journal's lines begin]: a follower past that offset reads on here."""
        jid = uuid.uuid4().hex
        head = {"stilts_journal": FORMAT, "id": jid, "base": base_id}
        if continues:
            head["from"] = continues
        return jid, orjson.dumps(head) + b"\n"

    # ---------------------------------------------------------------- folds

    def fold_in_background(self) -> None:
        if self.folder is not None and self.folder.is_alive():
            return
        self.folder = threading.Thread(target=self._fold_quietly, name="stilts-store-fold", daemon=True)
        self.folder.start()

    def _fold_quietly(self) -> None:
        try:
            self.fold()
            self.fold_error = None
        except (OSError, StiltsError) as exc:  # the journal keeps every change; the next fold tries again
            self.fold_error = exc

    def fold(self) -> None:
        """Fold the journal into the base (crash-safe at every step, see the module's docstring)."""
        with self.fold_lock:
            with self.append_lock:
                if self.fd is None:
                    return
                upto = len(self.lines)
            tmp, size = self._write_state()
            try:
                new_id = file_identity(tmp)
                with self.append_lock:
                    keep = _overlap(self.lines, upto, FOLD_MIN_BYTES // 2)
                    kept = self.lines[keep:]
                    cut = self.header_len + sum(map(len, self.lines[:keep]))
                    jid, header = self._header(new_id, [self.id, cut])
                    atomic_write(next_path(self.base), lambda fh: fh.write(header + b"".join(kept)))
                    os.replace(tmp, self.base)
                    try:
                        os.replace(next_path(self.base), journal_path(self.base))
                        fsync_dir(self.base.parent)
                        self._open(jid, len(header), kept, fresh=len(self.lines) - upto)
                    except BaseException:
                        self.broken = True  # the old journal no longer continues the base: never append to it
                        raise
                    self.base_size = size
                    self.folds += 1
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def _write_state(self) -> tuple[Path, int]:
        """The state into a new fsync'd temporary file, FOLD_CHUNK documents at a time, each
        chunk serialised under the append lock: the runner's appends wait milliseconds, not the
        whole serialisation. A chunk may hold lines appended after the fold began; those lines
        stay in the journal and replaying them changes nothing (every op is absolute)."""
        fd, name = tempfile.mkstemp(dir=self.base.parent, prefix=f".{self.base.name}.", suffix=".tmp")
        size = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                with self.append_lock:
                    tables = list(self.data)
                fh.write(b"{")
                for t, table in enumerate(tables):
                    with self.append_lock:
                        keys = list(self.data.get(table, ()))
                    fh.write((b"," if t else b"") + orjson.dumps(table) + b":{")
                    first = True
                    for i in range(0, len(keys), FOLD_CHUNK):
                        with self.append_lock:
                            docs = self.data.get(table, {})
                            part = orjson.dumps({k: docs[k] for k in keys[i:i + FOLD_CHUNK] if k in docs})
                        if len(part) > 2:
                            fh.write((b"" if first else b",") + part[1:-1])
                            first = False
                    fh.write(b"}")
                fh.write(b"}")
                fh.flush()
                os.fsync(fh.fileno())
                size = fh.tell()
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise
        return Path(name), size

    def write_whole(self, data: Tables) -> None:
        """Replace the base with `data` and drop the journal (a write through TinyDB's table API,
        the fold on open and the fold on close). The journal goes after the base is in place: a
        crash between leaves a journal naming the old base, which nobody applies."""
        with self.fold_lock, self.append_lock:
            payload = orjson.dumps(data)
            try:
                inject("store", self.base)
                atomic_write(self.base, lambda fh: fh.write(payload))
            except OSError as exc:
                raise write_error(self.base, exc) from None
            self._drop_journal()
            self.data = data
            self.base_size = len(payload)
            self.broken = False

    def _drop_journal(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        for p in (journal_path(self.base), next_path(self.base)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        self.lines, self.pending, self.size = [], 0, 0

    def close(self) -> None:
        """Fold everything into the base, so the file alone holds it; on a full disk the journal
        stays (nothing is lost: every reader and the next writer apply it)."""
        if self.folder is not None:
            self.folder.join()
        with contextlib.suppress(OSError, StiltsError):
            if self.fd is not None or journal_path(self.base).exists():
                self.write_whole(self.data)
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _overlap(lines: list[bytes], upto: int, budget: int) -> int:
    """Where the new journal starts: up to `budget` bytes of lines before `upto` (already in the
    new base; replaying them changes nothing) stay, so a follower that read a little way short
    of the fold reads on in the new journal instead of reading the whole file again."""
    start, kept = upto, 0
    while start > 0 and kept + len(lines[start - 1]) <= budget:
        start -= 1
        kept += len(lines[start])
    return start


def _write_all(fd: int, line: bytes, end: int) -> None:
    """Append `line` and fsync it; on a failure cut the journal back to `end`, so a half line
    never sits before the next one."""
    try:
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        (getattr(os, "fdatasync", None) or os.fsync)(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, end)
        raise


def write_error(path: Path, exc: OSError) -> StiltsError:
    if is_disk_full(exc):
        return DiskFullError(path, "write the results file")
    return StiltsError(f"could not write results file {path}: {exc.strerror}",
                       "check the folder's permissions; the previous results file is intact")


def merged(state: ReadState, parse: Callable[[bytes], Tables | None]) -> Tables | None:
    """The tables a consistent read holds: the base parsed, its journal's lines applied."""
    data = parse(state.raw)
    if state.journal is not None and state.journal.lines:
        data = data if data is not None else {}
        for ops in state.journal.lines:
            apply_ops(data, ops)
    return data


@dataclass
class Follow:
    """Where a follower's copy of the state stands: the base it read, the journal it reads on
    (its id) and the offset up to which it applied that journal's lines."""

    base_key: tuple[int, int, int]
    journal_id: str | None
    offset: int
    base_id: list[int] | None = None     # the identity of the base it read


def read_on(path: Path, at: Follow) -> tuple[list[list[Op]], Follow] | None:
    """The lines committed since `at` (and where they end), reading only those bytes; None when
    the follower must read the whole state again (its journal was folded past where it stood,
    dropped, or the file was replaced by other means)."""
    if not journal_path(path).exists():
        same = _stat_key(path) == at.base_key and at.journal_id is None
        return ([], at) if same else None
    with contextlib.suppress(FileNotFoundError), open(journal_path(path), "rb") as fh:
        return _read_on(fh, path, at)
    return None


def _read_on(fh: BinaryIO, path: Path, at: Follow) -> tuple[list[list[Op]], Follow] | None:
    head = fh.readline()
    try:
        header = orjson.loads(head)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(header, dict) or header.get("stilts_journal") != FORMAT:
        return None
    jid = header.get("id")
    link = header.get("from")
    if jid == at.journal_id:
        offset = at.offset
    elif isinstance(link, list) and link[0] == at.journal_id and at.offset >= link[1]:
        offset = len(head) + at.offset - link[1]   # folded behind the follower: read on in the new journal
    elif at.journal_id is None and at.base_id is not None and header.get("base") == at.base_id:
        offset = len(head)                          # a writer began a journal on the file it read
    else:
        return None
    fh.seek(offset)
    *complete, _torn = fh.read().split(b"\n")
    lines = []
    for line in complete:
        try:
            lines.append(orjson.loads(line)["ops"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
        offset += len(line) + 1
    key = _stat_key(path)
    return (lines, Follow(key, jid, offset, at.base_id)) if key is not None else None


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def follow_from(state: ReadState) -> Follow:
    j = state.journal
    return Follow(state.stat_key, j.header.get("id") if j else None, j.end if j else 0, state.base_id)
