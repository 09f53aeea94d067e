"""Root test configuration: the real-service fixtures (see tests/fixtures/services.py)."""

from tests.fixtures.services import (  # noqa: F401  (re-exported fixtures)
    ServiceEndpoints,
    _require_marked_services,
    database_url,
    kafka_bootstrap,
    service_provider,
    services,
)
