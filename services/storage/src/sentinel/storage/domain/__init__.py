"""Pure storage domain: series identity, batch validation, query planning, paging, partitions.

No gRPC, protobuf, asyncpg or redis here (checked by tests/test_import_contracts.py).
"""
