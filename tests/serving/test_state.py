"""The rules a request is served under (``ServingState.rules``): the profile's ban list file,
per-artist cap and re-ranking reach every route."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from segue.serving.app import create_app

from .support import PackageLoader, settings_with

pytestmark = pytest.mark.slow


def artists(answer: dict) -> list[str]:
    return [item["key"].split("|")[0] for item in answer["items"]]


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


def test_artist_cap_from_the_profile(serve, packages) -> None:
    url = serve(create_app(settings_with("serving.max_per_artist=1"), PackageLoader(packages)))
    answer = httpx.post(f"{url}/v1/next-songs", json={"songs": ["BTS - Butter"], "k": 5}).json()
    assert len(answer["items"]) == 5
    assert len(set(artists(answer))) == 5


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
