"""Features: window aggregates from the spec, an offline store with as-of joins, an online store."""
