"""The FastAPI dependencies: the admin key guarding the admin routes."""

from __future__ import annotations

import httpx
import pytest

from segue.serving.app import create_app

from .support import PackageLoader, settings_with

pytestmark = pytest.mark.slow

ADMIN_KEY = "k" * 24


@pytest.mark.parametrize(
    ("configured", "sent"),
    [(ADMIN_KEY, None), (ADMIN_KEY, "wrong-key"), ("", None), ("", "")],
)
def test_admin_reload_needs_the_configured_key(serve, packages, configured, sent) -> None:
    loader = PackageLoader(packages)
    url = serve(create_app(settings_with(f"serving.admin_api_key='{configured}'"), loader))
    headers = {} if sent is None else {"X-API-Key": sent}
    response = httpx.post(f"{url}/v1/admin/reload", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("ApiKey")
