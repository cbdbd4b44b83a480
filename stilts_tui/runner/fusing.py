"""Which ready runs train fused (train/fused/; README.md, "Fused trials"). The runner's queue
order stands: each group is led by the first run of it in that order (intermediates first, then
longest first), and takes with it later ready runs that may fuse with it (train/fused/rules.py),
up to the smallest width its runs allow (`fuse`, halved for a run whose fused attempt ran out
of memory). A run is never held back to wait for partners: a group is formed from what is ready
now, so intermediates are never starved and what depends on them waits only for them."""

from __future__ import annotations

from stilts_tui.domain.run_config import RunConfig
from stilts_tui.runner.slots import fused_trials_per_device
from stilts_tui.train.fused.rules import fuse_key, fuse_width, not_fusable


def width(cfg: RunConfig, caps: dict[str, int], auto: int) -> int:
    w = fuse_width(cfg)
    return min(auto if w is None else w, caps.get(cfg.run_id, 1 << 30))


def form_groups(ready: list[RunConfig], free: int, caps: dict[str, int] | None = None,
                auto: int | None = None) -> list[list[RunConfig]]:
    """At most `free` groups (each one worker) from `ready`, in its order."""
    caps = caps or {}
    taken: set[str] = set()
    groups: list[list[RunConfig]] = []
    for i, lead in enumerate(ready):
        if len(groups) >= free:
            break
        if lead.run_id in taken:
            continue
        taken.add(lead.run_id)
        group = [lead]
        if not_fusable(lead) is None:
            most = width(lead, caps, auto if auto is not None else fused_trials_per_device(lead))
            key = fuse_key(lead)
            for other in ready[i + 1:]:
                if len(group) >= most:
                    break
                if other.run_id not in taken and not_fusable(other) is None and fuse_key(other) == key \
                        and width(other, caps, most) > len(group):
                    group.append(other)
                    taken.add(other.run_id)
        groups.append(group)
    return groups


def placement_fields(group: list[RunConfig]) -> dict:
    """What a run's record says of fusion when it starts: the runs of its group, or why it trains
    alone although its sweep asked for fusion (`stilts status` and the app can show either)."""
    if len(group) > 1:
        return {"fused_group": [c.run_id for c in group], "fused_note": None}
    cfg = group[0]
    if fuse_width(cfg) == 1:
        return {"fused_group": None, "fused_note": None}
    return {"fused_group": None, "fused_note": not_fusable(cfg) or "no run it may fuse with was ready"}


def runs_per_worker(runs: list[RunConfig]) -> int:
    """The most runs one worker may hold in flight at once: its fused group's width (what the
    disk planner counts resumable states by)."""
    from stilts_tui.runner.slots import visible_gpus

    fusable = [r for r in runs if not_fusable(r) is None]
    if not fusable:
        return 1
    gpus = visible_gpus()
    return max(width(r, {}, fused_trials_per_device(r, gpus)) for r in fusable)
