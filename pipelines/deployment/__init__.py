"""Guarded deployment: smoke test, canary share, baking, then promote or roll back."""
