"""The pure domain of ingestion: canonical events, validation and derived samples (no I/O)."""
