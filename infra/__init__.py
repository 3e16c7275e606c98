"""The Pulumi program that provisions one environment of the platform (see `infra/program.py`)."""
