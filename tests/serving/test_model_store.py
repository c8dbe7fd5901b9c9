"""The model store: hot reload under traffic, failed reloads, broken packages, the admin route."""

from __future__ import annotations

import dataclasses
import threading

import httpx
import pytest

from segue.serving.app import create_app

from .support import PackageLoader, next_song_package, settings_with

pytestmark = pytest.mark.slow

ADMIN_KEY = "k" * 24
CLIENTS = 4
MAX_REQUESTS_PER_CLIENT = 2000
SETTLED_REQUESTS = 15  # each client stops after this many answers from the new version


def test_poller_swaps_the_model_while_requests_flow(serve, packages) -> None:
    loader = PackageLoader(packages, version="1")
    url = serve(create_app(settings_with("serving.reload_interval_seconds=0.05"), loader))
    new_model = {**packages, "next-song": next_song_package("most-popular")}
    answered = threading.Semaphore(0)
    first_answers = [threading.Event() for _ in range(CLIENTS)]
    seen: list[list[tuple[int, str, str]]] = [[] for _ in range(CLIENTS)]

    def client(index: int) -> None:
        settled = 0
        with httpx.Client(base_url=url, timeout=30) as http:
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                response = http.post("/v1/next-songs", json={"songs": ["iu|palette"], "k": 3})
                model = response.json().get("model", {}) if response.status_code == 200 else {}
                seen[index].append(
                    (response.status_code, model.get("version", ""), model.get("algorithm", ""))
                )
                answered.release()
                first_answers[index].set()
                settled = settled + 1 if model.get("version") == "2" else 0
                if settled >= SETTLED_REQUESTS:
                    return

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for _ in range(CLIENTS * 10):  # traffic is flowing on the old version
        assert answered.acquire(timeout=30)
    for first in first_answers:  # from every client, however slowly a busy machine started it
        assert first.wait(timeout=30)
    loader.release("2", new_model)
    for thread in threads:
        thread.join(timeout=120)

    for answers in seen:
        assert all(status == 200 for status, _, _ in answers)
        versions = [version for _, version, _ in answers]
        assert versions[0] == "1" and versions[-1] == "2"
        switch = versions.index("2")
        assert set(versions[switch:]) == {"2"}  # never back to the old version
        assert {algorithm for _, version, algorithm in answers if version == "2"} == {
            "most-popular"
        }
    metrics = httpx.get(f"{url}/metrics").text
    assert 'segue_model_reloads_total{task="next-song"} 2.0' in metrics
    assert 'segue_serving_model_info{algorithm="most-popular",name="dev.segue-next-song"' in metrics


def test_failed_reload_keeps_serving_the_old_model_and_is_counted(serve, packages) -> None:
    loader = PackageLoader(packages, version="1")
    settings = settings_with(f"serving.admin_api_key='{ADMIN_KEY}'")
    url = serve(create_app(settings, loader))
    headers = {"X-API-Key": ADMIN_KEY}

    loader.release("2", packages)
    loader.failure = OSError("artifact download failed")
    results = httpx.post(f"{url}/v1/admin/reload", headers=headers).json()["results"]
    assert {r["task"]: r["outcome"] for r in results} == {
        "next-song": "failed",
        "user-items": "failed",
    }
    assert all(r["version"] == "1" and "artifact download failed" in r["detail"] for r in results)

    answer = httpx.post(f"{url}/v1/next-songs", json={"songs": ["iu|palette"]})
    assert answer.status_code == 200 and answer.json()["model"]["version"] == "1"
    metrics = httpx.get(f"{url}/metrics").text
    assert 'segue_model_reload_failures_total{task="next-song"} 1.0' in metrics

    loader.failure = None
    results = httpx.post(f"{url}/v1/admin/reload", headers=headers).json()["results"]
    assert {r["outcome"] for r in results} == {"loaded"}
    answer = httpx.post(f"{url}/v1/next-songs", json={"songs": ["iu|palette"]})
    assert answer.json()["model"]["version"] == "2"
    again = httpx.post(f"{url}/v1/admin/reload", headers=headers).json()["results"]
    assert {r["outcome"] for r in again} == {"unchanged"}


def test_a_broken_package_never_replaces_a_working_one(serve, packages) -> None:
    loader = PackageLoader(packages, version="1")
    url = serve(create_app(settings_with(f"serving.admin_api_key='{ADMIN_KEY}'"), loader))
    broken_items = packages["next-song"].items.iloc[:3]  # catalogue and scorer disagree
    broken = dataclasses.replace(packages["next-song"], items=broken_items)
    loader.release("2", {**packages, "next-song": broken})
    results = httpx.post(f"{url}/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY}).json()
    outcome = {r["task"]: r for r in results["results"]}["next-song"]
    assert outcome["outcome"] == "failed" and "catalogue" in outcome["detail"]
    answer = httpx.post(f"{url}/v1/next-songs", json={"songs": ["iu|palette"]}).json()
    assert answer["model"]["version"] == "1"
