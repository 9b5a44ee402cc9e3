"""Progress of a long loop: a bar on a terminal and in a Jupyter notebook, otherwise one plain
line every few seconds (so that a log file gets a readable trace, not a megabyte of carriage
returns)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

LINE_EVERY_SECONDS = 10.0


def in_notebook(stream: TextIO) -> bool:
    """Whether ``stream`` is a Jupyter kernel's standard error or output (which shows a text
    bar redrawn in place, as a terminal does)."""
    return "ipykernel" in sys.modules and stream in (sys.stderr, sys.stdout)


class Progress:
    """``update(steps, text)`` as the loop advances, ``close()`` at the end.

    ``enabled=False`` shows nothing; ``stream`` (default stderr) decides between the bar
    (a terminal) and plain lines ``step 120/1500  <text>  9.3 step/s`` at most every
    ``every`` seconds, plus one at the end unless the last step was just shown.

    >>> import io
    >>> out = io.StringIO()
    >>> progress = Progress(3, stream=out, every=0.0)
    >>> for step in range(3):
    ...     progress.update(1, "loss 1.0")
    >>> progress.close()
    >>> out.getvalue().splitlines()[-1].startswith("step 3/3  loss 1.0")
    True
    """

    def __init__(self, total: int, initial: int = 0, enabled: bool = True,
                 stream: TextIO | None = None, every: float = LINE_EVERY_SECONDS,
                 unit: str = "step"):
        self.stream = stream or sys.stderr
        self.enabled, self.total, self.step, self.unit = enabled, total, initial, unit
        self.text, self.every = "", every
        self.bar = None
        if enabled and (self.stream.isatty() or in_notebook(self.stream)):
            self.bar = tqdm(total=total, initial=initial, unit=unit, file=self.stream)
        self.start = self.last = time.perf_counter()
        self.first_step = self.shown_step = initial

    def update(self, steps: int = 1, text: str | None = None) -> None:
        self.step += steps
        if text is not None:
            self.text = text
            if self.bar is not None:
                self.bar.set_postfix_str(text, refresh=False)
        if self.bar is not None:
            self.bar.update(steps)
        elif self.enabled and time.perf_counter() - self.last >= self.every:
            self._line()

    def _line(self) -> None:
        now = time.perf_counter()
        rate = (self.step - self.first_step) / max(now - self.start, 1e-9)
        total = "" if self.total >= 10**8 else f"/{self.total}"
        text = f"  {self.text}" if self.text else ""
        print(f"{self.unit} {self.step}{total}{text}  {rate:.3g} {self.unit}/s",
              file=self.stream, flush=True)
        self.last, self.shown_step = now, self.step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.step != self.shown_step:
            self._line()
