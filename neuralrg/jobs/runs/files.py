"""Files that readers see whole, with the permissions the user's umask gives.

Every file of a run directory is written to a temporary file beside it (``.NAME.*.tmp``),
flushed to disk, given the mode ``0666 & ~umask`` (a temporary file is created private)
and renamed over its destination: a kill at any moment leaves the old file or the new one,
never a torn one. Reading a file that is damaged or not what it should be gives one
``ValueError`` naming the file and what is wrong.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TEMPORARY = ".*.tmp"  # the pattern of a temporary file that a killed writer left behind


def current_umask() -> int:
    """This process's umask (the system call sets it; it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike, replace: bool = True) -> Iterator[Path]:
    """A temporary path beside ``path`` to write the new file to; when the block ends
    without an error, the file is synced, given the umask's permissions and renamed to
    ``path``. ``replace=False`` refuses (``ValueError``) to replace a file that exists.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "numbers.txt"
    >>> with atomic_path(target) as temporary:
    ...     _ = temporary.write_text("1 2 3")
    >>> target.read_text(), oct(target.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())
    ('1 2 3', True)
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        _publish(temporary, path, replace)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _publish(temporary: Path, path: Path, replace: bool) -> None:
    fd = os.open(temporary, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(temporary, 0o666 & ~current_umask())
    if not replace and path.exists():
        raise ValueError(f"{path} exists; it is kept (use --force to replace it)")
    os.replace(temporary, path)
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a torn one."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def save_figure(figure, path: str | os.PathLike) -> Path:
    """Write a matplotlib figure as PNG (atomically) and release it; returns the path."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def json_safe(value: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) by ``None``, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def atomic_write_json(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """``payload`` as indented JSON (NaN and infinities as ``null``), written atomically."""
    text = json.dumps(json_safe(payload), indent=2, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path``; ``ValueError`` naming the file if it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise ValueError(f"{path} is a directory, not a file") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not text (byte {error.start} is not UTF-8); the file "
                         "is damaged") from None
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ``ValueError`` naming the file for anything else.

    >>> import tempfile
    >>> bad = Path(tempfile.mkdtemp()) / "config.json"
    >>> _ = bad.write_text("[1, 2]")
    >>> read_json_object(bad)
    Traceback (most recent call last):
    ...
    ValueError: .../config.json holds a list, not an object of named fields
    """
    try:
        value = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON (line {error.lineno}, column "
                         f"{error.colno}: {error.msg}); the file is damaged") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} holds {json_kind(value)}, not an object of named fields")
    return value


def json_kind(value: Any) -> str:
    """How JSON calls ``value``: "null", "a list", "a string", ...

    >>> json_kind(None), json_kind([1]), json_kind(2.5)
    ('null', 'a list', 'a number')
    """
    kinds = {list: "a list", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", dict: "an object"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)
