"""Local adapters: files, SQLite and local processes under the environment's root."""
