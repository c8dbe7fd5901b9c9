"""Request and response bodies of the HTTP API, apart from the domain types they carry.

Limits that depend on the profile (``max_k``, ``max_songs``) are checked in ``state``; the
schemas hold the fixed rules: types, non-empty strings, no control characters or lone surrogates.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

Task = Literal["next-song", "user-items"]
MAX_TEXT_LENGTH = 300
MAX_USER_ID_LENGTH = 200


# Control characters (Unicode category Cc) and lone surrogates (Cs): one search per string,
# since every history item of every request passes here.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _printable(value: str) -> str:
    # Lone surrogates cannot be encoded as UTF-8 and control characters are never part of a song
    # name: both are refused here, so they can neither reach a model nor break a response.
    found = _UNPRINTABLE.search(value)
    if found is None:
        return value
    character = found.group()
    if unicodedata.category(character) == "Cs":
        raise ValueError(f"lone surrogate at character {found.start()}")
    raise ValueError(f"control character U+{ord(character):04X} at character {found.start()}")


Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT_LENGTH),
    AfterValidator(_printable),
]
ItemRef = Annotated[
    Text | int,
    Field(description="An item key; integers (e.g. MovieLens movieId) are read as their digits."),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NextSongsRequest(_Request):
    songs: list[Text] = Field(
        min_length=1,
        description='The playlist so far: "Artist - Title" strings or song keys, oldest first.',
        examples=[["IU - Palette", "아이유 - 밤편지"]],
    )
    k: int | None = Field(None, ge=1, description="List length (default serving.default_k).")
    exclude: list[Text] = Field(
        default_factory=list, description="Songs that must not be recommended, as for `songs`."
    )


class HistoryRequest(_Request):
    history: list[ItemRef] = Field(
        min_length=1, description="Item keys the user consumed, oldest first.", examples=[["1", 50]]
    )
    k: int | None = Field(None, ge=1, description="List length (default serving.default_k).")

    def keys(self) -> list[str]:
        return [str(item) for item in self.history]


def _digits_of_integer(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# One item key; an integer (e.g. a MovieLens movieId) is read as its digits. Unlike ``ItemRef``
# a problem names the field itself, not a member of a union.
ItemKey = Annotated[Text, BeforeValidator(_digits_of_integer)]
FeedbackType = Literal["impression", "click", "play", "skip", "accept"]
RecommendationId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
    AfterValidator(_printable),
]
# Feedback times outside these are a client's clock gone wrong, not an event.
EARLIEST_FEEDBACK = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_FEEDBACK = datetime(2100, 1, 1, tzinfo=UTC)


def _utc_time(value: datetime) -> datetime:
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not EARLIEST_FEEDBACK <= moment < LATEST_FEEDBACK:
        raise ValueError("must be between 2000-01-01 and 2100-01-01")
    return moment


class FeedbackEventBody(_Request):
    recommendation_id: RecommendationId = Field(
        description="The `recommendation_id` of the served list; ids this server never served "
        "are accepted (another replica, or before a restart) and reported as unattributed."
    )
    item: ItemKey = Field(description="The key of the item the event is about.")
    type: FeedbackType = Field(
        description="impression (the list was shown), click, play, skip or accept."
    )
    position: int | None = Field(
        None, ge=1, le=10000, description="The item's 1-based position in the list, when known."
    )
    timestamp: Annotated[datetime, AfterValidator(_utc_time)] | None = Field(
        None,
        description="When it happened (ISO 8601, or Unix seconds); without a zone, UTC. "
        "Default: when the server receives it.",
    )


class FeedbackRequest(_Request):
    events: list[FeedbackEventBody] = Field(
        min_length=1, description="Feedback events, at most serving.max_feedback_events."
    )


class FeedbackAccepted(BaseModel):
    accepted: int = Field(description="Events accepted (written to the event log when it is on).")


class ModelRef(BaseModel):
    name: str = Field(description="Registered model name, e.g. dev.segue-next-song.")
    version: str = Field(description="Registered model version serving this answer.")
    algorithm: str = Field(description="The model family, e.g. ease or item-knn.")


class Item(BaseModel):
    key: str
    artist: str
    title: str


class ScoredItem(Item):
    score: float = Field(description="The model's score; the order may differ after re-ranking.")


class RecommendationResponse(BaseModel):
    recommendation_id: str = Field(description="Unique id of this served list.")
    task: Task
    items: list[ScoredItem]
    model: ModelRef
    unmatched: list[str] = Field(description="Input songs or keys that matched no catalogue item.")
    fallback: str | None = Field(
        description="null, or why the list is the popularity fallback (e.g. 'unknown user')."
    )


class SearchResponse(BaseModel):
    task: Task
    items: list[Item]


class LoadedModel(BaseModel):
    task: Task
    name: str
    version: str
    algorithm: str
    items: int
    known_users: int
    loaded_at: float = Field(description="Unix time the version was loaded.")


class MissingModel(BaseModel):
    task: Task
    problem: str


class ModelsResponse(BaseModel):
    models: list[LoadedModel]
    missing: list[MissingModel]


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    status: Literal["ready"] = "ready"
    models: dict[str, str] = Field(description="Task -> version serving it.")


class ReloadOutcome(BaseModel):
    task: Task
    outcome: Literal["loaded", "unchanged", "failed", "no champion"]
    version: str | None
    detail: str


class ReloadResponse(BaseModel):
    results: list[ReloadOutcome]
