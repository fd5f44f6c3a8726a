"""Adapters: storage over gRPC, the Redis (or in-process) dedup lock, the in-process change feed."""
