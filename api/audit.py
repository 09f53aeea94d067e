"""The audit trail: every enroll, identify and erasure decision, on its own topic."""

from __future__ import annotations

from api.auth import Principal
from api.gateway import KafkaGateway
from core.settings import Settings
from schemas.envelope import Envelope
from schemas.events import AuditRecord


async def record(gateway: KafkaGateway, settings: Settings, principal: Principal, **fields: object) -> None:
    entry = AuditRecord(actor=principal.key_id, role=principal.role.value, **fields)  # type: ignore[arg-type]
    envelope = Envelope.wrap(entry, correlation_id=entry.request_id)
    await gateway.publish(settings.topics.audit, [(entry.request_id, envelope)])
