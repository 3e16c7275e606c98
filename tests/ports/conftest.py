"""The port contract suites share the AWS emulator fixtures of tests/conftest.py."""

from tests.aws_emulator import aws_client, make_bucket

__all__ = ["aws_client", "make_bucket"]
