"""What a load says about a file: LoadResult (counts, outcome line), RefusedFile (the whole
file refused, with a message safe to log and store) and ManifestMissing (not arrived yet)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path


class RefusedFile(Exception):
    """The whole file is refused. `public_message` is safe to log, alert and store."""

    def __init__(self, public_message: str, *, agency: str | None = None,
                 extract_date: date | None = None):
        super().__init__(public_message)
        self.public_message = public_message
        self.agency = agency
        self.extract_date = extract_date
        self.result: LoadResult | None = None  # set when the file got as far as being registered


class ManifestMissing(Exception):
    """The data file (or its manifest) has not arrived yet."""


@dataclass
class LoadResult:
    agency_code: str
    extract_date: str
    outcome: str  # loaded | already_loaded | ignored_older | refused
    file_id: int | None = None
    rows_in_file: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_stale: int = 0
    quarantined_share: float = 0.0
    quarantine_by_rule: dict[str, int] = field(default_factory=dict)
    unknown_columns: list[str] = field(default_factory=list)
    data_docs_path: str | None = None
    reason: str | None = None

    _HEADLINES = {"loaded": "LOADED", "already_loaded": "ALREADY LOADED, nothing to do",
                  "ignored_older": "IGNORED, a later extract of this day is loaded",
                  "refused": "REFUSED, nothing loaded"}

    def outcome_line(self) -> str:
        """One line with everything the data team looks for first (task logs, CLI)."""
        where = f"{self.agency_code} {self.extract_date}"
        line = (f"{where}: {self._HEADLINES.get(self.outcome, self.outcome)}: "
                f"{self.rows_in_file} rows in file, {self.rows_loaded} loaded, "
                f"{self.rows_quarantined} quarantined, {self.rows_stale} stale")
        if self.outcome == "refused" and self.reason:
            line += "; reason: " + self.reason.removeprefix(where + ": ")
        if self.data_docs_path:
            line += "; Data Docs: " + Path(self.data_docs_path).as_uri()
        return line
