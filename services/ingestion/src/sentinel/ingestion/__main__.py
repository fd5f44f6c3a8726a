"""`python -m sentinel.ingestion` / `sentinel-ingestion`."""

from __future__ import annotations

from sentinel.ingestion.app import build_server
from sentinel.ingestion.settings import IngestionSettings
from sentinel.runtime.server import run_service


def main() -> None:
    """Run the ingestion service until SIGTERM."""
    run_service("ingestion", IngestionSettings, build_server)


if __name__ == "__main__":
    main()
