"""Adapters behind the ports: `local` (files, SQLite, processes) and `aws`."""
