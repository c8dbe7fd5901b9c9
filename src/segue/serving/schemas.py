"""Request and response bodies of the HTTP API, apart from the domain types they carry.

Limits that depend on the profile (``max_k``, ``max_songs``) are checked in ``state``; the
schemas hold the fixed rules: types, non-empty strings, no control characters or lone surrogates.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

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
