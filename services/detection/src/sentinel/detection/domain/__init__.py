"""Pure detection domain: series keys, request validation, slots, episodes, recent results."""
