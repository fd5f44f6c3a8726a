"""gRPC entry points of the storage service."""
