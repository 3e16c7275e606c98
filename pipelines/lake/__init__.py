"""Getting batches into the lake: read, validate, quarantine or land (raw, then curated)."""
