"""MLOps blueprint: the platform contract, environment settings and the `mlops` CLI."""

__version__ = "0.1.0"
