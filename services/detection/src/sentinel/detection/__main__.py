"""`python -m sentinel.detection` / `sentinel-detection`."""

from __future__ import annotations

from sentinel.detection.app import build_server
from sentinel.detection.settings import DetectionSettings
from sentinel.runtime.server import run_service


def main() -> None:
    """Run the detection service until SIGTERM."""
    run_service("detection", DetectionSettings, build_server)


if __name__ == "__main__":
    main()
