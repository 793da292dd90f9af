"""What every command shares for output: JSON lines, tables, and progress on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)


def print_json(obj: Any) -> None:
    """One JSON object on one line of stdout (UTF-8, not escaped)."""
    sys.stdout.write(msgspec.json.encode(obj).decode() + "\n")
    sys.stdout.flush()


def console() -> Console:
    """The console for human-readable output on stdout."""
    return Console(highlight=False, soft_wrap=False)


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[..., None]]:
    """Yield ``update(completed, total=None, description=None)`` (a new total or description
    starts another phase); a bar is drawn on stderr only when it is a terminal."""
    err = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    with bar:
        task = bar.add_task(description, total=total)

        def update(completed: int, total: int | None = None,
                   description: str | None = None) -> None:
            if total is not None or description is not None:
                bar.update(task, total=total, description=description or "")
            bar.update(task, completed=completed)

        yield update
