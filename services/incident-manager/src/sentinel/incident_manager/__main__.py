"""`python -m sentinel.incident_manager` / `sentinel-incident-manager`."""

from __future__ import annotations

from sentinel.incident_manager.app import build_server
from sentinel.incident_manager.settings import IncidentManagerSettings
from sentinel.runtime.server import run_service


def main() -> None:
    """Run the incident manager until SIGTERM."""
    run_service("incident-manager", IncidentManagerSettings, build_server)


if __name__ == "__main__":
    main()
