"""Server lifecycle in one place: interceptors, health, reflection, metrics, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor

from sentinel.runtime.auth import AuthInterceptor
from sentinel.runtime.interceptors import AccessLogInterceptor, ErrorMappingInterceptor
from sentinel.runtime.keys import KeyRing
from sentinel.runtime.logging import configure_logging
from sentinel.runtime.settings import ConfigError, ServiceSettings, load_settings
from sentinel.runtime.telemetry import setup_tracing

logger = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ServiceRegistration:
    """One gRPC service to serve: its full name (for health and reflection) and how to add it."""

    name: str
    add_to_server: Callable[[grpc.aio.Server], None]


class Server:
    """A `grpc.aio` server with Sentinel's interceptors, health, reflection and lifecycle hooks.

    Health answers NOT_SERVING from the moment the port is bound until every startup hook has
    succeeded, and again from the moment shutdown begins.
    """

    def __init__(
        self,
        *,
        name: str,
        settings: ServiceSettings,
        services: Sequence[ServiceRegistration],
        on_startup: Sequence[Hook] = (),
        on_shutdown: Sequence[Hook] = (),
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    ) -> None:
        self.name = name
        self.settings = settings
        self._services = list(services)
        self._on_startup = list(on_startup)
        self._on_shutdown = list(on_shutdown)
        self.health = HealthServicer()
        size = settings.max_message_mb * 1024 * 1024
        self._server = grpc.aio.server(
            # OpenTelemetry outermost, so that access logs and error mapping run inside the span.
            interceptors=[
                aio_server_interceptor(),  # type: ignore[no-untyped-call]
                AccessLogInterceptor(settings.access_log_slow_ms),
                ErrorMappingInterceptor(),
                AuthInterceptor(KeyRing.from_config(settings.api_keys, settings.api_keys_file)),
                *interceptors,
            ],
            options=[
                ("grpc.max_send_message_length", size),
                ("grpc.max_receive_message_length", size),
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        )
        self.port = 0
        self._stopped = asyncio.Event()
        self._stopping = False

    @property
    def address(self) -> str:
        """`host:port` the server listens on (after `start`)."""
        return f"{self.settings.host}:{self.port}"

    async def start(self) -> int:
        """Bind, start serving (health NOT_SERVING), run the startup hooks, then report SERVING.

        Returns:
            The bound port.
        """
        for service in self._services:
            service.add_to_server(self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        names = [service.name for service in self._services]
        reflection.enable_server_reflection(
            [
                *names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            self._server,
        )
        for service_name in ("", *names):
            await self.health.set(service_name, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.port = self._server.add_insecure_port(f"{self.settings.host}:{self.settings.port}")
        if self.port == 0:
            raise RuntimeError(f"could not bind {self.settings.host}:{self.settings.port}")
        await self._server.start()
        logger.info(
            "%s listening on %s (starting)",
            self.name,
            self.address,
            extra={"address": self.address},
        )
        if self.settings.metrics_port is not None:
            from prometheus_client import start_http_server

            start_http_server(self.settings.metrics_port, addr=self.settings.host)
        try:
            for hook in self._on_startup:
                await hook()
        except BaseException:
            logger.exception("%s failed to start", self.name)
            await self.stop(grace=0)
            raise
        for service_name in ("", *names):
            await self.health.set(service_name, health_pb2.HealthCheckResponse.SERVING)
        logger.info("%s serving on %s", self.name, self.address, extra={"address": self.address})
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, let in-flight calls finish within `grace`, then run shutdown hooks."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        try:
            await self.health.enter_graceful_shutdown()
            await self._server.stop(self.settings.shutdown_grace_s if grace is None else grace)
            for hook in reversed(self._on_shutdown):
                try:
                    await hook()
                except Exception:
                    logger.exception("%s shutdown hook failed", self.name)
        finally:
            self._stopped.set()
            logger.info("%s stopped", self.name)

    async def wait_stopped(self) -> None:
        """Wait until `stop` has finished."""
        await self._stopped.wait()


async def serve_until_signalled(server: Server) -> None:
    """Start `server`, then run until SIGTERM or SIGINT and shut down gracefully."""
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)
    await server.start()
    await stop_requested.wait()
    logger.info("%s received a stop signal; draining", server.name)
    await server.stop()


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def run_service(
    name: str,
    settings_type: type[SettingsT],
    build: Callable[[SettingsT], Server],
) -> None:
    """Entry point of a service process: load config, set up logging and tracing, serve.

    An invalid configuration exits with status 2 and a message naming the variable.
    """
    try:
        settings = load_settings(settings_type)
    except ConfigError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(name, settings.log_level, settings.log_format)
    setup_tracing(name)

    async def main() -> None:
        # Built inside the running loop: grpc.aio objects bind to the loop they are created in.
        await serve_until_signalled(build(settings))

    asyncio.run(main())
