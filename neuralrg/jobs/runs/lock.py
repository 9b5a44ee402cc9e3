"""One writer per run directory.

Every command that writes in a run directory holds an advisory lock (``flock``) on the file
``.lock`` inside it, in which it leaves its process id and command line; a second writer is
refused at once with a :class:`RunLocked` error naming that process. The kernel drops the
lock with its process, so a holder that was killed never blocks anyone. A process may take
the lock of a directory it already holds (a growth chain, a report that analyzes).
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".lock"
_HELD: dict[tuple[int, int], int] = {}  # (device, inode) of a held directory -> depth


class RunLocked(ValueError):
    """Another process is writing in the run directory."""


@contextmanager
def exclusive(directory: str | os.PathLike) -> Iterator[None]:
    """Hold the lock of ``directory`` (which must exist) for the block.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with exclusive(folder), exclusive(folder):  # the holder may take it again
    ...     (Path(folder) / LOCK_FILE).read_text().startswith(f"process {os.getpid()} ")
    True
    """
    directory = Path(directory)
    status = os.stat(directory)
    key = (status.st_dev, status.st_ino)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    fd = _acquire(directory)
    _HELD[key] = 1
    try:
        yield
    finally:
        del _HELD[key]
        os.close(fd)  # closing the file releases the lock


def _acquire(directory: Path) -> int:
    try:
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        raise ValueError(f"run directory {directory} is not writable ({error.strerror})") \
            from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise RunLocked(f"run directory {directory} is in use by {holder}; wait until it "
                        "ends, or stop it") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{holder_description()}\n".encode(), 0)
    return fd


def holder_description() -> str:
    """``process PID (command line)`` of this process, on one line."""
    first = sys.argv[0] if sys.argv else ""
    program = Path(first)
    if first in ("", "-c"):
        name = f"python {first}".strip()
    elif program.name == "__main__.py":
        name = f"python -m {program.parent.name}"
    else:
        name = program.name
    command = " ".join(" ".join([name, *sys.argv[1:]]).split())
    if len(command) > 200:
        command = command[:197] + "..."
    return f"process {os.getpid()} ({command})"
