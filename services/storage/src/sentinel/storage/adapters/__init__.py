"""Adapters of the storage service to PostgreSQL and Redis."""
