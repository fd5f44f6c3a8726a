"""The incident manager: alerts to deduplicated, grouped, routed and notified incidents."""
