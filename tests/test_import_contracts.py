"""Architecture rules as tests: services never import each other; domain code stays pure."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {
    "ingestion": "sentinel.ingestion",
    "detection": "sentinel.detection",
    "storage": "sentinel.storage",
    "incident-manager": "sentinel.incident_manager",
}
# Infrastructure the pure domain must not touch (STYLE.md, convention 4).
FORBIDDEN_IN_DOMAIN = ("grpc", "google.protobuf", "asyncpg", "redis", "sentinel.api")


def imported_modules(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def python_files(*roots: Path) -> Iterator[Path]:
    for root in roots:
        yield from root.rglob("*.py")


def test_no_service_imports_another_service() -> None:
    violations = []
    for directory, own_package in SERVICES.items():
        service_root = ROOT / "services" / directory
        for path in python_files(service_root / "src", service_root / "tests"):
            for module in imported_modules(path):
                for other in SERVICES.values():
                    if other != own_package and is_within(module, other):
                        violations.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not violations, "\n".join(violations)


def test_libs_import_no_service() -> None:
    violations = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in python_files(ROOT / "libs")
        for module in imported_modules(path)
        if any(is_within(module, package) for package in SERVICES.values())
    ]
    assert not violations, "\n".join(violations)


def test_domain_packages_import_no_grpc_protobuf_asyncpg_or_redis() -> None:
    domain_files = list((ROOT / "services").glob("*/src/sentinel/*/domain/**/*.py"))
    violations = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in domain_files
        for module in imported_modules(path)
        if any(is_within(module, forbidden) for forbidden in FORBIDDEN_IN_DOMAIN)
    ]
    assert not violations, "\n".join(violations)


def test_sentinel_is_a_pep_420_namespace_everywhere() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.glob("*/*/src/sentinel/__init__.py")]
    assert not offenders, f"these break the `sentinel` namespace: {offenders}"


def test_the_contract_checker_catches_a_cross_service_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from sentinel.storage.app import build_server\nimport sentinel.detection.app\n")
    assert list(imported_modules(bad)) == ["sentinel.storage.app", "sentinel.detection.app"]
    assert is_within("sentinel.storage.app", "sentinel.storage")
    assert not is_within("sentinel.storage_extras", "sentinel.storage")
