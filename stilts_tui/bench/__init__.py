"""Benchmarks (`stilts bench ...`): measured against the obvious alternative in the same run."""
