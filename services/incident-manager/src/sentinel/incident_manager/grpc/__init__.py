"""gRPC entry points of the incident manager."""
