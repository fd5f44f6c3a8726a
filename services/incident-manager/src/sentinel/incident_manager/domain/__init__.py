"""The pure domain of the incident manager: alerts, incidents, silences and their rules (no I/O).

Nothing here imports gRPC, protobuf, asyncpg or Redis, and nothing reads the clock: every function
that needs the time takes `now`.
"""
