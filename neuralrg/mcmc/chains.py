"""What every batched Markov-chain run shares: the length checks and the recording schedule."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from neuralrg.validation import check_int


class StepCounter(Protocol):
    """What a sampler reports its steps to (e.g. :class:`neuralrg.progress.Progress`)."""

    def update(self, steps: int = 1, text: str | None = None) -> None: ...


def check_run_length(n_steps: int, n_therm: int, n_skip: int) -> None:
    """``n_steps >= 1`` recorded states, ``n_therm >= 0`` and ``n_skip >= 0``."""
    check_int("n_steps", n_steps, 1)
    check_int("n_therm", n_therm, 0)
    check_int("n_skip", n_skip, 0)


def recording_schedule(n_therm: int, n_steps: int, n_skip: int,
                       progress: StepCounter | None = None) -> Iterator[int | None]:
    """For every step of a run, the record slot it fills, or ``None``: ``n_therm``
    thermalisation steps, then ``n_steps`` records with ``n_skip`` discarded steps before
    each. Each step is reported to ``progress``, if given.

    >>> list(recording_schedule(1, 2, 1))
    [None, None, 0, None, 1]
    """
    for step in range(n_therm + n_steps * (n_skip + 1)):
        record, offset = divmod(step - n_therm, n_skip + 1)
        yield record if step >= n_therm and offset == n_skip else None
        if progress is not None:  # the step is done once the caller asks for the next
            progress.update(1)
