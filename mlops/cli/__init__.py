"""The `mlops` command: one entry point for people."""

from __future__ import annotations

from mlops.cli.app import app, main

__all__ = ["app", "main"]
