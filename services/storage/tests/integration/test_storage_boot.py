"""The storage service starts on real or embedded stores, migrates, and reports health truthfully."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sentinel.api.storage.v1 import storage_service_pb2
from sentinel.storage.adapters.migrations import load_migrations
from sentinel.storage.app import build_server
from sentinel.storage.settings import StorageSettings
from sentinel.testing.servers import channel_to, running


def settings(**values: object) -> StorageSettings:
    return StorageSettings(port=0, **values)  # type: ignore[arg-type]


async def health_of(channel: grpc.aio.Channel, service: str = "") -> int:
    response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service))
    return int(response.status)


async def test_starts_on_the_configured_servers_and_creates_the_schema(
    postgres_dsn: str, redis_url: str
) -> None:
    server = build_server(settings(postgres_dsn=postgres_dsn, redis_url=redis_url))
    async with running(server) as address, channel_to(address) as channel:
        assert await health_of(channel) == health_pb2.HealthCheckResponse.SERVING
        assert await health_of(channel, "sentinel.api.storage.v1.StorageService") == (
            health_pb2.HealthCheckResponse.SERVING
        )

    connection = await asyncpg.connect(postgres_dsn)
    try:
        tables = {
            row["tablename"]
            for row in await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        partitioned = await connection.fetchval(
            "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = 'samples'"
        )
    finally:
        await connection.close()
    assert {"series", "samples", "ingest_batches", "schema_migrations"} <= tables
    assert partitioned == 1


async def test_migrations_are_idempotent_across_restarts(postgres_dsn: str, redis_url: str) -> None:
    for _ in range(2):
        async with running(build_server(settings(postgres_dsn=postgres_dsn, redis_url=redis_url))):
            pass

    connection = await asyncpg.connect(postgres_dsn)
    try:
        versions = [row["version"] for row in await connection.fetch("SELECT version FROM schema_migrations")]
    finally:
        await connection.close()
    assert sorted(versions) == [m.version for m in load_migrations()]
    assert len(versions) == len(set(versions))


async def test_starts_embedded_postgres_and_redis_when_no_dsn_is_given(tmp_path: Path) -> None:
    server = build_server(settings(postgres_dsn=None, redis_url=None, var_dir=tmp_path))
    async with running(server) as address, channel_to(address) as channel:
        assert await health_of(channel) == health_pb2.HealthCheckResponse.SERVING
        postgres_pids = [
            p.pid
            for p in psutil.process_iter(["name", "cmdline"])
            if p.info["name"] == "postgres" and str(tmp_path) in " ".join(p.info["cmdline"] or [])
        ]
        assert postgres_pids, "an embedded postgres runs on the var dir"
        assert (tmp_path / "redis" / "redis.sock").exists()

    # Stopping the service stops the embedded servers it started.
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in postgres_pids
    )
    assert (tmp_path / "postgres" / "PG_VERSION").exists()


async def test_does_not_report_serving_when_postgres_is_unreachable(tmp_path: Path, redis_url: str) -> None:
    server = build_server(
        settings(postgres_dsn="postgresql://postgres@127.0.0.1:1/none", redis_url=redis_url)
    )
    with pytest.raises(ConnectionRefusedError):
        await server.start()


async def test_every_rpc_of_the_contract_is_served(postgres_dsn: str, redis_url: str) -> None:
    # No RPC is left to @pending_rpcs: an empty request never answers UNIMPLEMENTED.
    server = build_server(settings(postgres_dsn=postgres_dsn, redis_url=redis_url))
    service = storage_service_pb2.DESCRIPTOR.services_by_name["StorageService"]
    async with running(server) as address, channel_to(address) as channel:
        for method in service.methods:
            call = channel.unary_unary(
                f"/{service.full_name}/{method.name}",
                request_serializer=lambda _: b"",
                response_deserializer=lambda raw: raw,
            )
            code = grpc.StatusCode.OK
            try:
                await call(None)
            except grpc.aio.AioRpcError as error:
                code = error.code()
            assert code is not grpc.StatusCode.UNIMPLEMENTED, method.name
