"""`python -m stilts_tui.forecast REQUEST.json ANSWER.json`: compute (or read from cache) the
features a forecast needs and write what was made (jobs.FeatureAnswer). Run by ops/forecast.py
in a process of its own, so that neither the CLI's other commands nor the app import torch."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from stilts_tui.errors import StiltsError


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m stilts_tui.forecast REQUEST.json ANSWER.json", file=sys.stderr)
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        return _run(Path(argv[0]), Path(argv[1]))
    except StiltsError as exc:
        print(f"error: {exc.problem}", file=sys.stderr)
        if exc.fix:
            print(f"  fix: {exc.fix}", file=sys.stderr)
        return 2


def _run(request_path: Path, answer_path: Path) -> int:
    from stilts_tui.forecast.features import Encoders, feature_set
    from stilts_tui.forecast.jobs import FeatureAnswer, FeatureRequest
    from stilts_tui.tasks import register_task_file

    request = FeatureRequest.from_json(request_path.read_text(encoding="utf-8"))
    for path in request.task_files:
        register_task_file(path)
    encoders = Encoders()
    sets = []
    for job in request.jobs:
        start = time.perf_counter()
        made = feature_set(job, Path(request.cache_dir), encoders)
        how = "cached" if made.cached else f"{made.forward_passes} sequences in {made.seconds:.1f} s"
        print(f"forecast: features of {job.encoder} on {job.task}: {how} ({time.perf_counter() - start:.1f} s)",
              file=sys.stderr)
        sets.append(made)
    answer_path.write_text(FeatureAnswer(tuple(sets), encoders.seconds).to_json(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
