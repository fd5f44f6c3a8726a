"""`python -m sentinel.storage` / `sentinel-storage`."""

from __future__ import annotations

from sentinel.runtime.server import run_service
from sentinel.storage.app import build_server
from sentinel.storage.settings import StorageSettings


def main() -> None:
    """Run the storage service until SIGTERM."""
    run_service("storage", StorageSettings, build_server)


if __name__ == "__main__":
    main()
