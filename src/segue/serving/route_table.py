"""The list routes, written once: the FastAPI routes document them and the fast lane answers them.

A list route is a method and a path template. ``routes`` declares its FastAPI route from the
record and ``fast_lane`` matches requests against the same record, so renaming a route renames
it on both paths; the path template is also the route's label in the request metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

API_PREFIX = "/v1"


@dataclass(frozen=True)
class ListRoute:
    """One route answering a ``RecommendationResponse``."""

    method: str
    path: str  # the full template, e.g. "/v1/users/{user_id}/recommendations"

    @property
    def router_path(self) -> str:
        """The template within the API router (which adds ``API_PREFIX``)."""
        return self.path.removeprefix(API_PREFIX)


NEXT_SONGS = ListRoute("POST", f"{API_PREFIX}/next-songs")
HISTORY_LIST = ListRoute("POST", f"{API_PREFIX}/users/recommendations")
USER_LIST = ListRoute("GET", f"{API_PREFIX}/users/{{user_id}}/recommendations")
# Answered by FastAPI only (a key lookup that may be a 404 comes first); a list route all the same.
SIMILAR_ITEMS = ListRoute("GET", f"{API_PREFIX}/items/{{key:path}}/similar")

# The list routes the fast lane answers.
LIST_ROUTES = (NEXT_SONGS, HISTORY_LIST, USER_LIST)
# Every route that serves a task's lists: the series the metrics create at 0 on start-up.
ROUTES_BY_TASK = {
    "next-song": (NEXT_SONGS, SIMILAR_ITEMS),
    "user-items": (USER_LIST, HISTORY_LIST, SIMILAR_ITEMS),
}
