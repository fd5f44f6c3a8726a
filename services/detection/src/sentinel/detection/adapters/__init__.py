"""Adapters of the detection service: Redis checkpoints, storage and incident-manager clients."""
