"""One way to report pydantic validation errors: a heading, then one line per offending key."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


def describe_validation_error(error: ValidationError, heading: str, key_prefix: str = "") -> str:
    """`heading:` followed by `  <key_prefix><dotted.field.path>: <message> (got <value>)` for each
    error (the value when it is a single one: a missing key or a whole section has none to show)."""
    lines = [
        f"  {key_prefix}{'.'.join(str(part) for part in item['loc']) or '<root>'}: {item['msg']}{_got(item)}"
        for item in error.errors()
    ]
    return f"{heading}:\n" + "\n".join(lines)


def _got(item: Any) -> str:
    value = item.get("input")
    if item.get("type") == "missing" or isinstance(value, (dict, list, tuple, set)):
        return ""
    shown = repr(value)
    return f" (got {shown if len(shown) <= 80 else shown[:77] + '...'})"
