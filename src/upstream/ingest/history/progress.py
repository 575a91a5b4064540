"""What a history import reports: the summary (counts, refusals, time per phase), the progress
counters the CLI's bar shows and the periodic progress line of the task log."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta

log = logging.getLogger("upstream.ingest.history")

PROGRESS_LOG_SECONDS = 30.0


class ImportError_(Exception):
    """The import cannot start or go on; `public_message` is safe to print and log."""

    def __init__(self, public_message: str):
        super().__init__(public_message)
        self.public_message = public_message


@dataclass
class ImportSummary:
    start: date
    end: date
    agencies: tuple[str, ...]
    files_found: int = 0
    files_loaded: int = 0
    files_already_loaded: int = 0
    files_ignored_older: int = 0
    days_without_file: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    batches: int = 0
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # agency, day, reason
    quarantined_by_rule: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    seconds_by_phase: Counter = field(default_factory=Counter)  # for benchmarks/bench_history.py

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds_by_phase[phase] += time.perf_counter() - began

    def add(self, part: ImportSummary) -> None:
        """Fold in one agency's summary (agencies import in parallel, each into its own)."""
        for name in ("files_loaded", "files_already_loaded", "files_ignored_older",
                     "days_without_file", "rows_loaded", "rows_quarantined", "batches"):
            setattr(self, name, getattr(self, name) + getattr(part, name))
        self.refused.extend(part.refused)
        self.quarantined_by_rule.update(part.quarantined_by_rule)
        self.seconds_by_phase.update(part.seconds_by_phase)

    @property
    def nothing_found(self) -> bool:
        return self.files_found == 0

    def render(self) -> str:
        lines = [
            f"history import {self.start.isoformat()}..{self.end.isoformat()} for "
            f"{', '.join(self.agencies)}: {self.files_found} file(s) found in "
            f"{self.seconds:.1f} s ({self.batches} batch(es))",
            f"  files loaded: {self.files_loaded} ({self.rows_loaded} rows)",
            f"  files already loaded (skipped): {self.files_already_loaded}",
            f"  files ignored (a later extract of the day is loaded): {self.files_ignored_older}",
            f"  days without a file: {self.days_without_file}",
            f"  files refused: {len(self.refused)}",
        ]
        lines += [f"    {reason}" for _, _, reason in self.refused]
        lines.append(f"  rows quarantined: {self.rows_quarantined}")
        lines += [f"    {rule}: {n}" for rule, n in sorted(
            self.quarantined_by_rule.items(), key=lambda kv: (-kv[1], kv[0]))]
        if self.nothing_found:
            lines.append("  nothing imported: no extract file in this range")
        return "\n".join(lines)


class Progress:
    """Counters the import advances; `on_change` (the CLI's progress bar) sees every step."""

    def __init__(self, on_change: Callable[[Progress], None] | None = None):
        self.total_files = 0
        self.files = 0
        self.rows = 0
        self.started = time.monotonic()
        self.on_change = on_change
        self._lock = threading.Lock()

    def add_total(self, n: int) -> None:
        with self._lock:
            self.total_files += n
        self._changed()

    def advance(self, files: int = 0, rows: int = 0) -> None:
        with self._lock:
            self.files += files
            self.rows += rows
        self._changed()

    def _changed(self) -> None:
        if self.on_change:
            self.on_change(self)

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.files / elapsed
        left = self.total_files - self.files
        eta = str(timedelta(seconds=round(left / rate))) if rate > 0 else "unknown"
        return (f"history import: {self.files}/{self.total_files} files, {self.rows} rows, "
                f"{rate:.1f} files/s, {self.rows / elapsed:.0f} rows/s, ETA {eta}")


class ProgressLogger:
    """A progress line in the log every `interval` seconds while the import runs (task logs)."""

    def __init__(self, progress: Progress, interval: float = PROGRESS_LOG_SECONDS):
        self.progress, self.interval = progress, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="history-progress", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            log.info(self.progress.line())

    def __enter__(self) -> ProgressLogger:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        log.info(self.progress.line())
