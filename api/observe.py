"""Every HTTP request traced and counted, as pure ASGI middleware.

Not starlette's `BaseHTTPMiddleware` (`@app.middleware("http")`): it runs the app in a task of
its own and streams the response back through anyio memory streams, which cost the facade
more per identify than any of its routes' own steps did.
"""

from __future__ import annotations

import time

import structlog
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import tracing
from core.metrics import Metrics

_HEADER = tracing.HEADER.encode()


class Observe:
    """The request continues the caller's trace (or starts one), which every log line and
    Kafka record of it carries and the response names; the request is counted by route,
    method and status, and timed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        traceparent = tracing.continue_trace(Headers(scope=scope).get(tracing.HEADER))
        status = 500  # unless a response starts

        async def traced_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *(h for h in message.get("headers", []) if h[0] != _HEADER),
                    (_HEADER, traceparent.encode()),
                ]
            await send(message)

        # The app runs in this task: what is set here is what its code sees.
        reset = tracing.current.set(traceparent)
        structlog.contextvars.bind_contextvars(trace_id=tracing.trace_id(traceparent))
        try:
            await self.app(scope, receive, traced_send)
        finally:
            structlog.contextvars.unbind_contextvars("trace_id")
            tracing.current.reset(reset)
            self._count(scope, status, time.perf_counter() - started)

    @staticmethod
    def _count(scope: Scope, status: int, seconds: float) -> None:
        state = scope["app"].state
        path = getattr(scope.get("route"), "path", "unmatched")
        metrics: Metrics = state.metrics
        metrics.requests.labels(path, scope["method"], str(status)).inc()
        metrics.request_latency.labels(path).observe(seconds)
        metrics.in_flight.set(state.gateway.in_flight)
