"""The fast lane answers well-formed list requests past the framework: its answers must be the
ones the documented FastAPI routes give, in the documented schema."""

from __future__ import annotations

import httpx
import pytest
from serving_support import PackageLoader, settings_with

from segue.serving.app import create_app
from segue.serving.schemas import RecommendationResponse

pytestmark = pytest.mark.slow


@pytest.fixture
def url(serve, packages) -> str:
    return serve(create_app(settings_with(), PackageLoader(packages, version="3")))


def comparable(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    answer = RecommendationResponse.model_validate_json(response.content).model_dump()
    answer.pop("recommendation_id")
    return answer


def test_every_list_route_answers_in_the_documented_schema(url: str) -> None:
    answers = [
        httpx.post(f"{url}/v1/next-songs", json={"songs": ["IU - Palette"], "k": 3}),
        httpx.post(f"{url}/v1/users/recommendations", json={"history": ["1", 2], "k": 3}),
        httpx.get(f"{url}/v1/users/1/recommendations", params={"k": 3}),
        httpx.get(f"{url}/v1/users/no-such-user/recommendations"),
    ]
    lists = [comparable(response) for response in answers]
    assert [len(answer["items"]) for answer in lists] == [3, 3, 3, 10]
    assert lists[3]["fallback"] == "unknown user"


def test_a_request_handed_on_to_the_framework_gets_the_same_list(url: str) -> None:
    # An unknown query parameter is not the fast lane's to judge: FastAPI answers that one.
    fast = httpx.get(f"{url}/v1/users/1/recommendations", params={"k": 4})
    framework = httpx.get(f"{url}/v1/users/1/recommendations", params={"k": 4, "trace": "1"})
    assert comparable(fast) == comparable(framework)


def test_json_that_is_valid_but_oddly_written_is_answered(url: str) -> None:
    raw = b'  {"k" : 2 ,\n "history" : [ 1 , "2" ] }  '
    response = httpx.post(
        f"{url}/v1/users/recommendations", content=raw, headers={"content-type": "application/json"}
    )
    assert len(comparable(response)["items"]) == 2
