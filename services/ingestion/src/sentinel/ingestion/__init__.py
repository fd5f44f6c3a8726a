"""The ingestion service: validates, normalises and durably stores telemetry, then forwards it."""
