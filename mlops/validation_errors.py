"""One way to report pydantic validation errors: a heading, then one line per offending key."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(error: ValidationError, heading: str, key_prefix: str = "") -> str:
    """`heading:` followed by `  <key_prefix><dotted.field.path>: <message>` for each error."""
    lines = [
        f"  {key_prefix}{'.'.join(str(part) for part in item['loc']) or '<root>'}: {item['msg']}"
        for item in error.errors()
    ]
    return f"{heading}:\n" + "\n".join(lines)
