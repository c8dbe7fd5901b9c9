"""Rejected records: how they are shortened, located, counted, written and read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from segue.data.rejects import (
    STAGE_PARSE,
    Rejection,
    RejectionLog,
    StrictModeError,
    read_rejections,
    shorten,
)


def test_shorten_keeps_short_text_and_cuts_long_text_naming_its_length() -> None:
    assert shorten("IU - Palette") == "IU - Palette"
    assert shorten({"songs": [1, None]}) == '{"songs":[1,null]}'
    assert shorten("x" * 12, limit=5) == "xxxxx… [12 characters]"


def test_a_rejection_names_its_file_line_record_and_song() -> None:
    rejection = Rejection("song", "a.json", STAGE_PARSE, "empty song string", index=2, song=0)
    assert rejection.describe() == "a.json, record 2, song 0: empty song string"


def test_the_log_counts_by_unit_and_stage_and_strict_mode_raises() -> None:
    log = RejectionLog()
    log.add(Rejection("song", "a", STAGE_PARSE, "r"))
    log.add(Rejection("playlist", "a", "min_sequence_length", "r"))
    assert (len(log), log.count("song"), log.count("playlist", STAGE_PARSE)) == (2, 1, 0)
    assert log.counts_by_stage() == {"parse": {"song": 1}, "min_sequence_length": {"playlist": 1}}
    strict = RejectionLog(strict=True)
    strict.add(Rejection("playlist", "a", "banned_users", "rule drops are policy, not errors"))
    with pytest.raises(StrictModeError, match="a, line 3: bad"):
        strict.add(Rejection("rating", "a", STAGE_PARSE, "bad", line=3))


def test_written_lines_read_back_even_with_a_lone_surrogate(tmp_path: Path) -> None:
    log = RejectionLog()
    log.add(Rejection("song", "a.jsonl", STAGE_PARSE, "lone surrogate", "x\ud800", line=4))
    path = log.write(tmp_path / "rejected.jsonl")
    assert read_rejections(path) == [
        {
            "unit": "song",
            "source": "a.jsonl",
            "line": 4,
            "stage": "parse",
            "reason": "lone surrogate",
            "record": "x\ud800",
        }
    ]
