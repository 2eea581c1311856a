"""A training DataLoader that a Lightning checkpoint can put back where it was, so a resumed run sees exactly
the batches an uninterrupted one would.

Lightning saves the state of any train loader that has ``state_dict``/``load_state_dict`` and hands it back
before the resumed epoch starts; a plain DataLoader restarts its epoch from the first batch instead (a replay,
and a different shuffle). The state here is the shuffle generator's state when the current pass began plus
how many batches of that pass were trained on. ``common.lit.fit`` keeps the second number (Lightning fetches
one batch ahead, so the loader itself cannot tell fetched from trained).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` (same arguments) whose position survives a checkpoint. Under DDP Lightning rebuilds it
    with a DistributedSampler like any DataLoader subclass."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pass_start_state: torch.Tensor | None = None  # generator state when the current pass began
        self._trained_in_pass = 0  # set by common.lit.fit's DataPosition callback
        self._restore: dict[str, Any] | None = None

    def mark_trained(self, batches_in_pass: int) -> None:
        self._trained_in_pass = int(batches_in_pass)

    def state_dict(self) -> dict[str, Any]:
        return {"pass_start_state": self._pass_start_state, "trained_in_pass": self._trained_in_pass}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._restore = dict(state)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        skip = 0
        restoring = self._restore is not None
        if self._restore is not None:
            if self.generator is not None and self._restore.get("pass_start_state") is not None:
                self.generator.set_state(self._restore["pass_start_state"])
            skip = int(self._restore.get("trained_in_pass", 0))
            self._restore = None
        self._pass_start_state = self.generator.get_state() if self.generator is not None else None
        self._trained_in_pass = skip
        if not restoring or self.generator is not None:
            return self._skipping(super().__iter__(), skip)
        # Without a generator, creating the iterator draws a worker base seed from the global RNG, which the
        # checkpoint restored to its state after this draw was made in the original run: do not draw it twice.
        rng = torch.get_rng_state()
        it = super().__iter__()
        torch.set_rng_state(rng)
        return self._skipping(it, skip)

    @staticmethod
    def _skipping(it: Iterator[Any], skip: int) -> Iterator[Any]:
        for _ in range(skip):  # same draws, same order: the skipped batches are built and dropped
            next(it)
        yield from it
