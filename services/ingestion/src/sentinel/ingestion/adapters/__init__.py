"""Adapters of the ingestion service: the storage client and the detection forwarder."""
