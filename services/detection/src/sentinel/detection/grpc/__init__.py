"""gRPC entry points of the detection service."""
