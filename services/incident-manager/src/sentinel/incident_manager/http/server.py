"""The HTTP server: app factory, auth, overload and error middleware, lifecycle."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sentinel.incident_manager.service import IncidentService
from sentinel.runtime.clock import Clock
from sentinel.runtime.errors import (
    AlreadyExistsError,
    ConflictError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    NotImplementedYetError,
    PermissionDeniedError,
    ResourceExhaustedError,
    SentinelError,
    UnauthenticatedError,
    UnavailableError,
)
from sentinel.runtime.keys import KeyRing

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Seconds a client should wait before retrying an overloaded (503) request.
RETRY_AFTER_S = 1
_PUBLIC_PATHS = frozenset({"/-/healthy", "/-/ready"})

_STATUS: list[tuple[type[SentinelError], int]] = [
    (InvalidArgumentError, 400),
    (UnauthenticatedError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (AlreadyExistsError, 409),
    (ConflictError, 409),
    (FailedPreconditionError, 409),
    (ResourceExhaustedError, 503),
    (UnavailableError, 503),
    (NotImplementedYetError, 501),
    (DeadlineExceededError, 504),
]


@dataclass
class Context:
    """What every handler needs: the same use cases as gRPC, the API keys, the clock."""

    service: IncidentService
    keys: KeyRing
    clock: Clock

    def tenant(self, request: web.Request, *, fallback_key: str = "") -> str:
        """The tenant of `request`, from its bearer key or `X-Sentinel-Tenant`.

        `fallback_key` stands in for a missing `Authorization` header (PagerDuty's routing_key).

        Raises:
            UnauthenticatedError: keys are configured and the key is missing or unknown.
        """
        metadata = {name.lower(): value for name, value in request.headers.items()}
        if fallback_key and self.keys.enabled and "authorization" not in metadata:
            metadata["authorization"] = f"Bearer {fallback_key}"
        return self.keys.tenant_for(metadata)


CONTEXT = web.AppKey("context", Context)


def error_response(status: int, message: str, *, field: str = "", reason: str = "") -> web.Response:
    """A JSON error body: Alertmanager's `status/error` and PagerDuty's `message/errors` shapes at once."""
    body: dict[str, Any] = {
        "status": "error",
        "error": message,
        "message": message,
        "errors": [message],
    }
    if field:
        body["field"] = field
    if reason:
        body["reason"] = reason
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return web.json_response(body, status=status, headers=headers)


def status_for(exc: SentinelError) -> int:
    """The HTTP status of a domain error."""
    return next((status for kind, status in _STATUS if isinstance(exc, kind)), 500)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON.

    Raises:
        InvalidArgumentError: empty or malformed body (field "body").
        web.HTTPRequestEntityTooLarge: the body exceeds the app's `client_max_size`.
    """
    raw = await request.read()
    if not raw.strip():
        raise InvalidArgumentError("body", "is empty; expected JSON")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError("body", f"is not valid JSON: {exc}") from None


def _error_middleware(max_body_bytes: int) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except SentinelError as exc:
            status = status_for(exc)
            if status >= 500:
                logger.warning("%s %s failed: %s", request.method, request.path, exc.message)
            field = exc.field if isinstance(exc, InvalidArgumentError) else ""
            return error_response(status, exc.message, field=field, reason=exc.reason)
        except web.HTTPRequestEntityTooLarge as exc:
            return error_response(
                413, f"body: exceeds the limit of {max_body_bytes} bytes ({exc.text})", field="body"
            )
        except web.HTTPException as exc:
            if exc.status >= 400:
                return error_response(exc.status, exc.reason)
            raise

    return middleware


def _overload_middleware(max_in_flight: int) -> Any:
    in_flight = 0

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal in_flight
        if request.path in _PUBLIC_PATHS:
            return await handler(request)
        if in_flight >= max_in_flight:
            return error_response(
                503, f"overloaded: {max_in_flight} requests in flight; retry", reason="OVERLOADED"
            )
        in_flight += 1
        try:
            return await handler(request)
        finally:
            in_flight -= 1

    return middleware


def _size_middleware(max_body_bytes: int) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > max_body_bytes:
            return error_response(
                413, f"body: {length} bytes exceed the limit of {max_body_bytes} bytes", field="body"
            )
        return await handler(request)

    return middleware


async def _healthy(request: web.Request) -> web.Response:
    return web.Response(text="OK")


def create_app(
    service: IncidentService,
    *,
    keys: KeyRing,
    clock: Clock,
    max_body_bytes: int = 1024 * 1024,
    max_in_flight: int = 256,
) -> web.Application:
    """The HTTP receivers as an aiohttp application.

    Args:
        service: The incident use cases (the same object the gRPC servicer calls).
        keys: API keys; when configured, every request but health needs a bearer key.
        clock: Time source (Alertmanager's missing endsAt = now + 5 minutes).
        max_body_bytes: Larger bodies answer 413.
        max_in_flight: Requests beyond this many at once answer 503 with Retry-After.
    """
    from sentinel.incident_manager.http import alertmanager, pagerduty

    app = web.Application(
        client_max_size=max_body_bytes,
        middlewares=[
            _error_middleware(max_body_bytes),
            _overload_middleware(max_in_flight),
            _size_middleware(max_body_bytes),
        ],
    )
    app[CONTEXT] = Context(service, keys, clock)
    app.router.add_get("/-/healthy", _healthy)
    app.router.add_get("/-/ready", _healthy)
    alertmanager.add_routes(app)
    pagerduty.add_routes(app)
    return app


class HttpReceiver:
    """The HTTP server's lifecycle, for the Server's startup and shutdown hooks."""

    def __init__(self, app: web.Application, *, host: str, port: int) -> None:
        self._app = app
        self._host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """`http://host:port` (after `start`)."""
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve; port 0 picks a free one (see `port`)."""
        runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise RuntimeError(f"could not bind HTTP {self._host}:{self._requested_port}: {exc}") from exc
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])
        logger.info("HTTP receivers listening on %s", self.url, extra={"address": self.url})

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests, release the port."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
