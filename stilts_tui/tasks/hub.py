"""Loading tasks from the Hugging Face hub through `datasets`, failing fast when offline."""

from __future__ import annotations

import os
import socket

from stilts_tui.errors import StiltsError

HUB_HOST = "huggingface.co"


def hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        socket.create_connection((HUB_HOST, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def load_hub_rows(dataset: str, config: str | None, split: str) -> list[dict]:
    """Rows of one split of a hub dataset; a clear error (and no wait) when the hub is out of reach."""
    name = dataset + (f":{config}" if config else "")
    if not hub_reachable():
        raise StiltsError(
            f"cannot load {name} from the Hugging Face hub: the hub is not reachable (offline)",
            "pass --data-dir DIR pointing at the task's official release files",
        )
    import datasets  # deferred: importing datasets costs ~1 s

    try:
        ds = datasets.load_dataset(dataset, config, split=split)
    except Exception as exc:  # datasets raises many types for network and naming failures
        raise StiltsError(f"loading {name} ({split}) from the hub failed: {exc}",
                          "check the network, or pass --data-dir DIR with the official files") from None
    return list(ds)
