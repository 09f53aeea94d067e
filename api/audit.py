"""The audit trail: every enroll, identify and erasure decision, on its own topic."""

from __future__ import annotations

from api.auth import Principal
from api.gateway import KafkaGateway
from core.settings import Settings
from schemas.envelope import Envelope
from schemas.events import DEFAULT_GALLERY, AuditRecord


async def record(
    gateway: KafkaGateway,
    settings: Settings,
    principal: Principal,
    *,
    gallery: str = DEFAULT_GALLERY,
    **fields: object,
) -> None:
    role = principal.role_in(gallery)
    entry = AuditRecord(
        actor=principal.key_id,
        role=role.value if role else "",
        gallery=gallery,
        **fields,  # type: ignore[arg-type]
    )
    envelope = Envelope.wrap(entry, correlation_id=entry.request_id)
    await gateway.publish(settings.topics.audit, [(entry.request_id, envelope)])
