"""``checkpoint.pt``: written atomically, read without unpickling arbitrary objects.

A file that holds anything but tensors and plain data is refused before anything in it
runs, with a message that says what it asked for; a damaged file (truncated, garbled,
empty) is named as such. Neither message repeats PyTorch's advice to load the file unsafely.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from neuralrg.jobs.runs.files import atomic_path

_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` of ``state`` to ``path``, atomically."""
    with atomic_path(path) as temporary:
        torch.save(state, temporary)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint in ``path`` (a dict with a ``model`` state), loaded with
    ``weights_only=True``; ``ValueError`` naming the file and what is wrong otherwise."""
    try:
        handle = path.open("rb")
    except OSError as error:
        raise ValueError(f"cannot read checkpoint {path}: {error.strerror}") from None
    with handle:
        try:
            state = torch.load(handle, map_location=map_location, weights_only=True)
        except Exception as error:  # torch raises several types for foreign or torn files
            raise ValueError(f"checkpoint {path} cannot be loaded safely: {_why(error)}; it "
                             "was not loaded") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise ValueError(f"checkpoint {path} holds no model state (a {type(state).__name__}"
                         f"{'' if not isinstance(state, dict) else ' without a model entry'});"
                         " it is not a neuralrg checkpoint")
    return state


def _why(error: Exception) -> str:
    if isinstance(error, pickle.UnpicklingError):
        found = _GLOBAL.search(str(error))
        if found:
            return (f"it asks to import {found.group(1)}, and unpickling it could run code "
                    "(a checkpoint holds only tensors and plain data)")
        return "it is not a PyTorch checkpoint of tensors and plain data (damaged or foreign)"
    return f"the file is damaged or truncated ({type(error).__name__})"
