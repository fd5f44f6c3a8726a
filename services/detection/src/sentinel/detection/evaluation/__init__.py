"""Offline evaluation of the engine: NAB runner, synthetic LLM telemetry, window scorer."""
