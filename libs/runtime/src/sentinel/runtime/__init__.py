"""Shared runtime of every Sentinel service: settings, server lifecycle, errors, channels,
telemetry, logging and time."""
