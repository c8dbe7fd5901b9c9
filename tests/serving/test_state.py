"""The rules a request is served under (``ServingState.rules``): the profile's ban list file,
per-artist cap and re-ranking reach every route; where a request's list is computed
(``RequestContext.recommend``)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from segue.serving import recommender
from segue.serving.app import create_app
from segue.serving.batching import ScoringQueue
from segue.serving.recommender import ListRules, ModelVersion, ServingModel
from segue.serving.state import RequestContext

from .support import PackageLoader, settings_with, user_items_package


def artists(answer: dict) -> list[str]:
    return [item["key"].split("|")[0] for item in answer["items"]]


@pytest.mark.slow
def test_ban_list_file_applies_and_is_reread_when_edited(serve, packages, tmp_path: Path) -> None:
    bans = tmp_path / "bans.txt"
    bans.write_text("# editors keep this file\nartist:Coldplay\n", encoding="utf-8")
    url = serve(
        create_app(settings_with(f"serving.ban_list_file='{bans}'"), PackageLoader(packages))
    )
    body = {"songs": ["Adele - Hello"], "k": 12}

    answer = httpx.post(f"{url}/v1/next-songs", json=body).json()
    assert "coldplay" not in artists(answer) and len(answer["items"]) == 12 - 3

    edited = tmp_path / "bans.new"
    edited.write_text("adele|someonelikeyou\nartist:아이유\n", encoding="utf-8")
    os.replace(edited, bans)
    answer = httpx.post(f"{url}/v1/next-songs", json=body).json()
    keys = [item["key"] for item in answer["items"]]
    assert "coldplay" in artists(answer)
    assert "adele|someonelikeyou" not in keys
    assert "iu" not in artists(answer)  # the alias bans every IU song, whatever the spelling
    similar = httpx.get(f"{url}/v1/items/coldplay|yellow/similar", params={"k": 12}).json()
    assert "iu" not in artists(similar)


@pytest.mark.slow
def test_artist_cap_from_the_profile(serve, packages) -> None:
    url = serve(create_app(settings_with("serving.max_per_artist=1"), PackageLoader(packages)))
    answer = httpx.post(f"{url}/v1/next-songs", json={"songs": ["BTS - Butter"], "k": 5}).json()
    assert len(answer["items"]) == 5
    assert len(set(artists(answer))) == 5


@pytest.mark.slow
def test_rerank_from_the_profile_changes_the_list(serve, packages) -> None:
    body = {"songs": ["iu|palette"], "k": 5}
    plain_url = serve(create_app(settings_with(), PackageLoader(packages)))
    plain = httpx.post(f"{plain_url}/v1/next-songs", json=body).json()
    diverse_url = serve(
        create_app(
            settings_with("serving.rerank='diversity'", "serving.rerank_weight=0.7"),
            PackageLoader(packages),
        )
    )
    diverse = httpx.post(f"{diverse_url}/v1/next-songs", json=body).json()
    assert len(set(artists(diverse))) > len(set(artists(plain)))


def test_keyed_lists_cheaper_than_the_hop_skip_the_scoring_queue(monkeypatch) -> None:
    model = ServingModel("user-items", ModelVersion("m", "1"), user_items_package("ease"), 85.0)
    queue = ScoringQueue("user-items")  # not started: a request it is given fails
    context = RequestContext(SimpleNamespace(scoring={"user-items": queue}), model, ListRules())
    keys = list(model.keys)

    def build(model: ServingModel, rules: ListRules):
        return model.history_request(keys[:3], 5, rules)

    expected = model.recommend(build(model, ListRules()))
    assert asyncio.run(context.recommend(build, keyed=True)) == expected
    with pytest.raises(RuntimeError, match="not running"):  # free text: always the queue's
        asyncio.run(context.recommend(build))
    monkeypatch.setattr(recommender, "QUICK_LIST_CELLS", 2 * len(keys))
    with pytest.raises(RuntimeError, match="not running"):  # over the budget: the queue's
        asyncio.run(context.recommend(build, keyed=True))
    queue.start()
    try:
        assert asyncio.run(context.recommend(build, keyed=True)) == expected
    finally:
        queue.stop()
