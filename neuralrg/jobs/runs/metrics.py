"""``metrics.csv``: one row per logged training step, appended as it is logged.

A row is appended by one write of a whole line (and synced), so that a kill leaves at most
an unfinished last line, which reading drops. Cutting the rows after a step (for a resume)
writes the rows kept to a new file and renames it over the old one. Any other damage (a
missing ``step`` column, a malformed line, steps out of order) is an error naming the file
and the line.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from neuralrg.jobs.runs.files import atomic_path, read_text

Row = dict[str, float | int | None]


def append_row(path: Path, row: dict) -> None:
    """Append ``row`` (and the header, to a new file) with one synced write."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        data = _csv_text([row], header=os.fstat(fd).st_size == 0).encode()
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _csv_text(rows: list[dict], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_rows(path: Path) -> list[Row]:
    """The rows of ``path`` as numbers (``None`` for an empty field); an unfinished last
    line (a kill while appending) is dropped. ``[]`` if the file does not exist."""
    return _rows(path, read_text(path))[0] if path.exists() else []


def _rows(path: Path, text: str) -> tuple[list[Row], bool]:
    """The rows of ``text`` (read from ``path``), and whether its last line was unfinished."""
    torn = bool(text) and not text.endswith("\n")
    reader = csv.DictReader(io.StringIO(text[: text.rfind("\n") + 1] if torn else text))
    try:
        if reader.fieldnames is not None and "step" not in reader.fieldnames:
            raise ValueError(f"{path} has no 'step' column (its header is "
                             f"{','.join(reader.fieldnames)!r}); it is not a metrics file")
        rows = [_parse(path, reader.line_num, row) for row in reader]
    except csv.Error as error:
        raise ValueError(f"{path}, line {reader.line_num}: {error}; the file is damaged") \
            from None
    _check_steps(path, rows)
    return rows, torn


def _parse(path: Path, line: int, row: dict) -> Row:
    if None in row or None in row.values():
        raise ValueError(f"{path}, line {line}: the number of fields differs from the "
                         "header's; the file is damaged")
    try:
        return {key: _number(value) for key, value in row.items()}
    except ValueError:
        raise ValueError(f"{path}, line {line}: a field is not a number; the file is "
                         "damaged") from None


def _check_steps(path: Path, rows: list[Row]) -> None:
    steps = [row["step"] for row in rows]
    if any(not isinstance(step, int) for step in steps):
        raise ValueError(f"{path}: a step is not a whole number; the file is damaged")
    for k in range(1, len(steps)):
        if steps[k] <= steps[k - 1]:
            raise ValueError(f"{path}, line {k + 2}: step {steps[k]} after step "
                             f"{steps[k - 1]}; steps must increase (two runs wrote here?)")


def _number(text: str) -> float | int | None:
    if text == "":
        return None
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def keep_rows_until(path: Path, last_step: int) -> int:
    """Drop the rows after ``last_step`` and an unfinished last line, replacing the file at
    once (never piece by piece); returns how many rows were dropped."""
    if not path.exists():
        return 0
    rows, torn = _rows(path, read_text(path))
    kept = [row for row in rows if row["step"] <= last_step]
    if len(kept) == len(rows) and not torn:
        return 0
    if not kept:
        path.unlink()
    else:
        with atomic_path(path) as temporary:
            temporary.write_text(_csv_text(kept, header=True), newline="")
    return len(rows) - len(kept)
