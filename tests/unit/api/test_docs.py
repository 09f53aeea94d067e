"""/docs and /redoc work offline: every asset they load is served by the API itself."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI

from tests.unit.api.factories import client


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_nothing_from_another_host(app: FastAPI, page: str) -> None:
    response = client(app, key=None).get(page)
    assert response.status_code == 200
    html = response.text
    assert "cdn." not in html and "googleapis" not in html, html
    assets = re.findall(r"""(?:src|href)=["']?([^"' >]+)""", html) + re.findall(r"url: '([^']+)'", html)
    assert assets, html
    for asset in assets:
        assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
        assert client(app, key=None).get(asset).status_code == 200, asset


def test_swagger_ui_bundle_is_the_real_script(app: FastAPI) -> None:
    response = client(app, key=None).get("/docs-assets/swagger-ui-bundle.js")
    assert response.status_code == 200
    assert "SwaggerUIBundle" in response.text
