"""Batch inference: score a lake snapshot with point-in-time features and write the predictions
to the lake as one Iceberg snapshot per (model version, input snapshot)."""
