"""gRPC entry points of the ingestion service."""
