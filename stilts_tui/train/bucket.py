"""The batches of AllenNLP 0.8.4's ``BucketIterator`` as jiant taskmaster_v1 built it
(``batching = "allennlp_bucket"``).

jiant (trainer.py l. 318-331) makes, per task, ``BucketIterator(sorting_keys=<every padding key of
the first instance>, max_instances_in_memory=10000, batch_size=batch_size,
biggest_batch_first=True)`` with the default ``padding_noise = 0.1``, and reads it forever
(``num_epochs=None``). One pass over the data, in AllenNLP v0.8.4:

- ``DataIterator._memory_sized_lists`` (data_iterator.py l. 194-228): the (lazy) instances in file
  order, cut into chunks of ``max_instances_in_memory`` (``lazy_groups_of``); no shuffle across
  chunks, ever.
- ``BucketIterator._create_batches`` (bucket_iterator.py l. 111-143), per chunk:
  ``sort_by_padding`` (l. 17-41) adds to every padding length a uniform noise within
  ``± padding_noise × length`` (``add_noise_to_dict_values``, common/util.py l. 150-161) and sorts
  the chunk by the noisy lengths in ``sorting_keys`` order; ``lazy_groups_of`` cuts it into
  batches of ``batch_size`` (the last one shorter); with ``biggest_batch_first`` the last two
  batches (the longest, possibly not full, and the one before) are popped, the rest shuffled with
  ``random.shuffle``, and the two put in front, the last first.

The sorting keys: a jiant instance's first padded field is its input text (``inputs`` of a pair,
``input1``, or ``choice0``, ``choice1``, ... of multiple choice; metadata and label fields have no
padding lengths), so the sort is by the noisy token count of the first sequence, then the next
sequence's. A sequence here has one key, its length with the special tokens. The random draws come
from a ``random.Random`` seeded per pass from the run's generator: jiant's came from the process's
global ``random`` (seeded with ``random_seed`` and drawn on by everything before), whose state is
not recoverable, so the draws cannot be jiant's own, only drawn the way it drew them."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

# trainer.py l. 325-330 and BucketIterator's default (bucket_iterator.py l. 89)
MAX_INSTANCES_IN_MEMORY = 10_000
PADDING_NOISE = 0.1


def _chunks(n: int, size: int) -> Iterator[list[int]]:
    for start in range(0, n, size):
        yield list(range(start, min(start + size, n)))


def _sorted_by_padding(chunk: list[int], keys: Sequence[Sequence[int]], rng: random.Random, noise: float) -> list[int]:
    """``sort_by_padding``: one noise draw per key of each instance, in chunk order, then a stable
    sort by the noisy keys."""
    noisy = []
    for i in chunk:
        lengths = []
        for value in keys[i]:
            spread = value * noise
            lengths.append(value + rng.uniform(-spread, spread) if noise > 0 else value)
        noisy.append((lengths, i))
    noisy.sort(key=lambda x: x[0])
    return [i for _, i in noisy]


def bucket_pass(keys: Sequence[Sequence[int]], batch_size: int, rng: random.Random,
                max_in_memory: int = MAX_INSTANCES_IN_MEMORY, noise: float = PADDING_NOISE,
                biggest_first: bool = True) -> list[list[int]]:
    """The batches (example indices) of one pass over ``len(keys)`` examples; ``keys[i]`` are the
    sorting lengths of example ``i``."""
    out: list[list[int]] = []
    for chunk in _chunks(len(keys), max_in_memory):
        ordered = _sorted_by_padding(chunk, keys, rng, noise)
        batches = [ordered[s : s + batch_size] for s in range(0, len(ordered), batch_size)]
        move_to_front = biggest_first and len(batches) > 1
        if move_to_front:
            last, penultimate = batches.pop(), batches.pop()
        rng.shuffle(batches)
        if move_to_front:
            batches.insert(0, penultimate)
            batches.insert(0, last)
        out.extend(batches)
    return out


def batches_per_pass(n: int, batch_size: int, max_in_memory: int = MAX_INSTANCES_IN_MEMORY) -> int:
    """Batches of one pass: each chunk's last batch may be short, so it can be more than jiant's
    ``n_tr_batches = ceil(n / batch_size)`` (trainer.py l. 342), which is what jiant counts epochs in."""
    return sum(-(-len(c) // batch_size) for c in _chunks(n, max_in_memory))


def sorting_keys(input_ids: Sequence) -> list[tuple[int, ...]]:
    """Each example's sorting lengths: its sequence's tokens, or each choice's in order."""
    return [tuple(len(c) for c in x) if x and isinstance(x[0], list) else (len(x),) for x in input_ids]
