"""`python -m stilts_tui.bench.trainer_run RUN.json`: one run through Hugging Face Trainer (the
baseline of `stilts bench sweep`), its result written to result.json beside the run file."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

T0 = time.time()


def main(argv: list[str]) -> int:
    import transformers

    transformers.utils.logging.set_verbosity_error()
    from stilts_tui.bench.worker import bench_trainer
    from stilts_tui.domain.run_config import RunConfig
    from stilts_tui.tasks import register_task_file

    cfg = RunConfig.load(argv[0])
    for f in cfg.task_files:
        register_task_file(f)
    result = bench_trainer(cfg, pad_to=None)
    start_s = result["ready_t"] - T0  # imports, data and model: what each fresh process pays before training
    (Path(argv[0]).parent / "result.json").write_text(json.dumps(result | {"start_s": start_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
