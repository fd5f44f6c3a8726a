"""HTTP JSON receivers beside gRPC: Alertmanager webhook and API v2, PagerDuty Events v2."""
