"""Progress for long commands: a live rich display in a terminal, one plain line per event
elsewhere (CI logs), and consoles whose tables are as wide as their content off a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# Off a terminal nothing wraps: a log line or a table row stays whole however long it is.
UNWRAPPED_WIDTH = 10_000


def make_console(file: IO[str] | None = None) -> Console:
    """A console for reports: the terminal's width in a terminal, unwrapped elsewhere."""
    console = Console(file=file or sys.stdout, highlight=False)
    if console.is_terminal:
        return console
    return Console(file=file or sys.stdout, highlight=False, width=UNWRAPPED_WIDTH, soft_wrap=True)


class Events:
    """Counts things done out of a total; live bars in a terminal, one line per event off it.

    ``task(name, total)`` opens a bar (or prints a heading line), ``advance(name, line)``
    moves it and prints ``line`` above the bars (or as a plain line) unless it is empty.
    """

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.live = console.is_terminal
        self._tasks: dict[str, Any] = {}
        self._progress: Progress | None = None
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self._progress.start()

    def task(self, name: str, description: str, total: int) -> None:
        if self._progress is not None:
            if name in self._tasks:
                self._progress.remove_task(self._tasks[name])
            self._tasks[name] = self._progress.add_task(escape(description), total=total)

    def advance(self, name: str, line: str = "", *, important: bool = False) -> None:
        if self._progress is not None and name in self._tasks:
            self._progress.advance(self._tasks[name])
        self.print(line, important=important)

    def done(self, name: str) -> None:
        if self._progress is not None and name in self._tasks:
            self._progress.remove_task(self._tasks.pop(name))

    def print(self, line: str, *, important: bool = False) -> None:
        """A line above the bars; ``quiet`` keeps only the important ones."""
        if line and (important or not self.quiet):
            self.console.print(line)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> Events:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# Sees each schemathesis engine event of `harness contracts test`, with the target's Report.
Observer = Callable[[Any, Any], None]


def conformance_observer(events: Events) -> Observer:
    """Progress of a conformance run: a bar per phase over the target's operations, and a
    line when a phase ends (requests and failures so far). Events are told apart by class
    name, so this module needs no schemathesis import."""

    scenarios = [0]  # finished in the current phase; phases with none are not reported

    def observe(report: Any, event: Any) -> None:
        kind = type(event).__name__
        if kind == "PhaseStarted":
            scenarios[0] = 0
            events.task("phase", f"{report.name} · {_phase(event)}", len(report.operations))
        elif kind == "ScenarioFinished" and getattr(event, "label", None):
            scenarios[0] += 1
            events.advance("phase")
        elif kind == "PhaseFinished":
            events.done("phase")
            if scenarios[0]:
                events.print(
                    f"{escape(report.name)} · {_phase(event)}: {scenarios[0]} operation runs; "
                    f"{sum(report.requests.values())} requests and "
                    f"{report.failure_count} failure(s) so far",
                    important=True,
                )

    return observe


def _phase(event: Any) -> str:
    name = getattr(getattr(event, "phase", None), "name", "phase")
    return str(getattr(name, "value", name)).lower()
