"""Checks of the places a command will write to, made before any heavy work: each gives one
``ValueError`` naming the flag, the path and what is wrong with it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def writable(directory: Path) -> bool:
    """Whether this process can create files in the existing ``directory`` (tried, not
    inferred from the mode bits: a read-only mount, an ACL or root's rights all count)."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def check_directory_to_write(name: str, path: str | os.PathLike) -> Path:
    """``path`` as a directory this process can write in, now or once it is created (with
    its missing parents).

    >>> check_directory_to_write("run-dir", "/proc/version/run")
    Traceback (most recent call last):
    ...
    ValueError: run-dir='/proc/version/run': /proc/version is a file, not a directory
    """
    path = Path(path)
    existing = nearest_existing(path)
    if not existing.is_dir():
        raise ValueError(f"{name}={str(path)!r}: {existing} is a file, not a directory")
    if not writable(existing):
        what = "the directory" if existing == path else "its parent"
        raise ValueError(f"{name}={str(path)!r}: {what} {existing} is not writable")
    return path


def check_file_to_write(name: str, path: str | os.PathLike, replace: bool = True) -> Path:
    """``path`` as a file this process can create in an existing, writable directory; with
    ``replace=False`` it must not exist yet (``--force`` replaces it)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{name}={str(path)!r} is a directory; give a file name")
    parent = path.parent
    if not parent.is_dir():
        kind = "is not a directory" if parent.exists() else "does not exist"
        raise ValueError(f"{name}={str(path)!r}: the folder {parent} {kind}")
    if not writable(parent):
        raise ValueError(f"{name}={str(path)!r}: the folder {parent} is not writable")
    if not replace and os.path.lexists(path):
        raise ValueError(f"{name}={str(path)!r} exists; it is kept (use --force to replace it)")
    return path
