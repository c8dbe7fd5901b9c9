"""Rejected records: what was dropped or unreadable, where it came from and why.

Every line of ``rejected.jsonl`` is one JSON object for one record of one counting unit::

    unit      "playlist" | "song" | "rating" | "movie"
    source    the input file
    line      1-based line in the file (JSON Lines, CSV, .dat; JSON read errors)   optional
    index     0-based position in a JSON array of playlists                        optional
    song      0-based position of the song entry inside its playlist's list        optional
    sequence  the playlist or user id, when known                                 optional
    stage     "read" (not decodable), "parse" (decodable but invalid) or a rule name
    reason    what was wrong, in words
    record    the offending text, cut to ``MAX_RECORD_CHARS`` characters

Lines are written with lone surrogates escaped (``\\ud800``), so the file is valid UTF-8 and
``json.loads`` gives back the original string.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_RECORD_CHARS = 200
STAGE_READ = "read"
STAGE_PARSE = "parse"


class StrictModeError(ValueError):
    """Raised in strict mode at the first unreadable or invalid record."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.describe())
        self.rejection = rejection


def shorten(value: Any, limit: int = MAX_RECORD_CHARS) -> str:
    """A record as text for the report: strings as they are, other values as compact JSON."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        except (TypeError, ValueError):
            text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text)} characters]"


@dataclass(frozen=True)
class Rejection:
    """One dropped or unreadable record of one counting unit."""

    unit: str
    source: str
    stage: str
    reason: str
    record: str = ""
    line: int | None = None
    index: int | None = None
    song: int | None = None
    sequence: str | None = None

    def location(self) -> str:
        parts = [self.source]
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.index is not None:
            parts.append(f"record {self.index}")
        if self.song is not None:
            parts.append(f"song {self.song}")
        return ", ".join(parts)

    def describe(self) -> str:
        return f"{self.location()}: {self.reason}"

    def to_json(self) -> str:
        fields: dict[str, Any] = {"unit": self.unit, "source": self.source}
        for name in ("line", "index", "song", "sequence"):
            value = getattr(self, name)
            if value is not None:
                fields[name] = value
        fields.update(stage=self.stage, reason=self.reason, record=self.record)
        return json.dumps(fields, ensure_ascii=False)


class RejectionLog:
    """Collects rejections in input order; in strict mode the first read or parse one raises."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self.rejections: list[Rejection] = []

    def add(self, rejection: Rejection) -> None:
        if self.strict and rejection.stage in (STAGE_READ, STAGE_PARSE):
            raise StrictModeError(rejection)
        self.rejections.append(rejection)

    def extend(self, rejections: list[Rejection]) -> None:
        for rejection in rejections:
            self.add(rejection)

    def __len__(self) -> int:
        return len(self.rejections)

    def count(self, unit: str, stage: str | None = None) -> int:
        return sum(
            1
            for rejection in self.rejections
            if rejection.unit == unit and (stage is None or rejection.stage == stage)
        )

    def counts_by_stage(self) -> dict[str, dict[str, int]]:
        """How many records of each unit every stage rejected."""
        tally = Counter((rejection.stage, rejection.unit) for rejection in self.rejections)
        result: dict[str, dict[str, int]] = {}
        for (stage, unit), number in tally.items():
            result.setdefault(stage, {})[unit] = number
        return result

    def write(self, path: str | Path) -> Path:
        target = Path(path)
        # backslashreplace turns a lone surrogate inside a JSON string into its \\uXXXX escape.
        with target.open("w", encoding="utf-8", errors="backslashreplace") as handle:
            for rejection in self.rejections:
                handle.write(rejection.to_json())
                handle.write("\n")
        return target


def read_rejections(path: str | Path) -> list[dict[str, Any]]:
    """The objects of a ``rejected.jsonl`` file, in order."""
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
