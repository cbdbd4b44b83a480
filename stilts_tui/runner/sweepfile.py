"""A sweep as the runner receives it: the resolved runs and the slot options, in one private
JSON file. The detached runner reads it at start, and `stilts resume` hands it the same file."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.errors import StiltsError
from stilts_tui.runner.files import RunnerFiles, write_private_json
from stilts_tui.runner.options import RunnerOptions
from stilts_tui.sweep.naming import slug


def write_sweep(files: RunnerFiles, name: str, runs: list[RunConfig], options: RunnerOptions, spec_path: str | None) -> Path:
    files.make_dirs()
    safe = slug(name, fallback="sweep")
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"
    path = files.sweeps / f"{stamp}-{safe}.json"
    n = 1
    while path.exists():  # never over another sweep's file: `stilts resume` may still need it
        n += 1
        path = files.sweeps / f"{stamp}-{n}-{safe}.json"
    write_private_json(path, {"name": name, "spec": spec_path, "created_at": time.time(), "options": options.to_dict(),
                              "runs": [asdict(r) for r in runs]})
    return path


def read_sweep(path: str | Path) -> tuple[str, list[RunConfig], RunnerOptions]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        options = RunnerOptions.from_dict(data.get("options") or {})
        return data["name"], [RunConfig.from_dict(r) for r in data["runs"]], options
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StiltsError(f"cannot read sweep file {path}: {exc}",
                          "start the sweep again with stilts run SPEC (finished runs are skipped)") from None


def sweep_spec_path(sweep_file: str | Path | None) -> str | None:
    """The spec a sweep file was made from (None when unknown, or the file cannot be read)."""
    if not sweep_file:
        return None
    try:
        return json.loads(Path(sweep_file).read_text(encoding="utf-8")).get("spec")
    except (OSError, ValueError, AttributeError):
        return None
