from __future__ import annotations

import ast
from pathlib import Path

import sentinel.incident_manager.domain as domain

FORBIDDEN = ("grpc", "google.protobuf", "asyncpg", "redis", "sentinel.api", "opentelemetry", "time")


def test_domain_imports_no_grpc_protobuf_io_or_clock() -> None:
    for path in Path(domain.__path__[0]).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"
        assert ".now(" not in path.read_text(), f"{path.name} reads the clock"
