"""The storage service: owns PostgreSQL (samples, series, anomalies, incidents) and the Redis cache."""
