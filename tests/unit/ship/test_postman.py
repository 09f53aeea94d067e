"""The Postman collection covers exactly the live OpenAPI paths and methods, with X-API-Key auth."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.ship.shipfiles import REPO

COLLECTION = REPO / "postman" / "facestream.postman_collection.json"


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    from api.app import create_app
    from core.settings import Settings

    return create_app(Settings()).openapi()  # built, never started


@pytest.fixture(scope="module")
def collection() -> dict[str, Any]:
    return json.loads(COLLECTION.read_text())  # type: ignore[no-any-return]


def requests(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        if "item" in item:
            yield from requests(item["item"])
        else:
            yield item


def template(url: dict[str, Any]) -> str:
    return "/" + "/".join(re.sub(r"^:(\w+)$", r"{\1}", segment) for segment in url["path"])


def test_every_openapi_operation_is_in_the_collection(
    openapi: dict[str, Any], collection: dict[str, Any]
) -> None:
    expected = {(method.upper(), path) for path, ops in openapi["paths"].items() for method in ops}
    found = [(r["request"]["method"], template(r["request"]["url"])) for r in requests(collection["item"])]
    assert len(found) == len(set(found)), "duplicate requests"
    assert set(found) == expected


def test_parameters_and_bodies_match_the_operations(
    openapi: dict[str, Any], collection: dict[str, Any]
) -> None:
    for item in requests(collection["item"]):
        request = item["request"]
        operation = openapi["paths"][template(request["url"])][request["method"].lower()]
        params = operation.get("parameters", [])
        query = {q["key"] for q in request["url"].get("query", [])}
        assert query == {p["name"] for p in params if p["in"] == "query"}, item["name"]
        path_vars = {v["key"] for v in request["url"].get("variable", [])}
        assert path_vars == {p["name"] for p in params if p["in"] == "path"}, item["name"]
        assert request["url"]["raw"].startswith("{{baseUrl}}/")
        body_schema = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
        if body_schema:
            ref = body_schema["schema"]["$ref"].rsplit("/", 1)[-1]
            fields = set(openapi["components"]["schemas"][ref]["properties"])
            sent = {f["key"] for f in request["body"]["formdata"]}
            assert sent == fields and all(f["type"] == "file" for f in request["body"]["formdata"])


def test_auth_is_the_api_key_header_from_a_collection_variable(
    openapi: dict[str, Any], collection: dict[str, Any]
) -> None:
    auth = {entry["key"]: entry["value"] for entry in collection["auth"]["apikey"]}
    assert collection["auth"]["type"] == "apikey"
    assert auth["key"] == "X-API-Key" and auth["in"] == "header"
    variable = re.fullmatch(r"\{\{(\w+)\}\}", auth["value"])
    assert variable, "the key comes from a variable"
    declared = {v["key"] for v in collection["variable"]}
    assert {variable.group(1), "baseUrl"} <= declared
    used = set(re.findall(r"\{\{(\w+)\}\}", COLLECTION.read_text()))
    assert used <= declared, f"undeclared variables: {used - declared}"
    for item in requests(collection["item"]):
        request = item["request"]
        operation = openapi["paths"][template(request["url"])][request["method"].lower()]
        needs_key = any(p["name"] == "X-API-Key" for p in operation.get("parameters", []))
        assert (request.get("auth", {}).get("type") != "noauth") == needs_key, item["name"]
