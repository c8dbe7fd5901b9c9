"""The request schemas' text rule: exactly the control characters and lone surrogates are refused."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from pydantic import ValidationError

from segue.serving.schemas import NextSongsRequest


def test_every_control_character_and_surrogate_is_refused_and_nothing_else() -> None:
    refused = []
    for code in range(sys.maxunicode + 1):
        try:
            NextSongsRequest(songs=[f"a{chr(code)}b"])
        except ValidationError:
            refused.append(code)
    # Tab and newline too: only the ends of a song are stripped, and no song name holds them.
    assert refused == [
        code
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in {"Cc", "Cs"}
    ]


def test_the_message_names_the_character_and_where_it_is() -> None:
    message = "control character U+0007 at character 1"
    with pytest.raises(ValidationError, match=re.escape(message)):
        NextSongsRequest(songs=["fine", "x\u0007"])
