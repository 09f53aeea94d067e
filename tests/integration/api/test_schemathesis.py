"""schemathesis against the live OpenAPI schema of a real stack: no 5xx, and every response
conforms to the schema (status code documented, content type, body)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.services import ServiceEndpoints
from tests.integration.faults.harness import launch_stack
from tests.integration.pipeline.stack import API_KEY

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.models, pytest.mark.timeout(240)]

MAX_EXAMPLES = 12


@pytest.fixture(scope="module")
def live_api(services: ServiceEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # A generous rate limit: this test is about the schema, not about 429s.
    with launch_stack(
        services, tmp_path_factory.mktemp("schema"), name="schema", rate_limit_per_s="1000"
    ) as running:
        yield running.stack.api_url


@pytest.fixture(scope="module")
def api_schema(live_api: str) -> Any:
    return schemathesis.openapi.from_url(f"{live_api}/openapi.json")


def not_a_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx at all: a healthy stack answers 503/504 no more than it answers 500."""
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} answered {response.status_code}: {response.text[:500]}"
    )
    return None


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _describe(exc: BaseException) -> str:
    found = getattr(exc, "exceptions", None) or [exc]
    return "\n".join(f"- {type(e).__name__}: {str(e)[:1500]}" for e in found)


def test_api_conforms_to_its_schema(api_schema: Any) -> None:
    # Not `schemathesis.pytest.from_fixture` + `@schema.parametrize()`: with pytest 9 its lazy
    # loader fails (`'Function' object has no attribute '_nodeid'`, schemathesis 4.32.5).
    # The same Hypothesis strategies, driven per operation here.
    failures: dict[str, str] = {}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 6, [op.label for op in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers={"X-API-Key": API_KEY}, timeout=30, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is a Base one
            failures[operation.label] = _describe(exc)
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_every_keyed_operation_documents_401_403_and_429(live_api: str) -> None:
    """A wrong key is a 401 on every keyed operation, and the schema says so, as it says that
    a role without the right gets 403 and a key over its rate 429 (schemathesis, which always
    sends a valid key under a generous limit, never sees these)."""
    import httpx

    spec = httpx.get(f"{live_api}/openapi.json", timeout=10).json()
    open_paths = {"/health", "/health/live", "/metrics"}
    undocumented = {}
    with httpx.Client(base_url=live_api, headers={"X-API-Key": "wrong-key"}, timeout=30) as client:
        for path, operations in spec["paths"].items():
            if path in open_paths:
                continue
            for method, operation in operations.items():
                concrete = path.replace("{person_id}", "jane.doe").replace("{face_id}", "f" * 32)
                response = client.request(method.upper(), concrete)
                assert (response.status_code, response.json()["code"]) == (401, "unauthorized"), (
                    f"{method.upper()} {path}: {response.status_code} {response.text}"
                )
                missing = {"401", "403", "429"} - set(operation["responses"])
                if missing:
                    undocumented[f"{method.upper()} {path}"] = sorted(missing)
    assert not undocumented, f"responses missing from the OpenAPI schema: {undocumented}"
