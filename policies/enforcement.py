"""Per-environment enforcement: `policies/enforcement/<env>.json`, in the Pulumi policy-pack config
format, so the same file drives `pulumi preview --policy-pack-config` and the offline evaluation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policies.model import Level
from policies.rules import BY_NAME

ENFORCEMENT_DIR = Path(__file__).resolve().parent / "enforcement"


class EnforcementError(Exception):
    """An enforcement file is missing, names an unknown rule, or leaves a rule out."""


@dataclass(frozen=True)
class RuleSetting:
    level: Level
    params: dict[str, Any]


def enforcement_file(env: str, directory: Path = ENFORCEMENT_DIR) -> Path:
    return directory / f"{env}.json"


def load_enforcement(env: str, directory: Path = ENFORCEMENT_DIR) -> dict[str, RuleSetting]:
    """Every rule's level and parameters in `env`; every rule must be listed (levels are data)."""
    path = enforcement_file(env, directory)
    if not path.exists():
        raise EnforcementError(f"no policy enforcement file for environment {env!r}: {path}")
    raw: dict[str, Any] = json.loads(path.read_text())
    unknown = sorted(set(raw) - set(BY_NAME) - {"all"})
    missing = sorted(set(BY_NAME) - set(raw))
    if unknown or missing:
        raise EnforcementError(f"{path}: unknown rules {unknown}, rules without a level {missing}")
    settings = {}
    for name, entry in raw.items():
        if name == "all":
            continue
        if isinstance(entry, str):
            entry = {"enforcementLevel": entry}
        params = {k: v for k, v in entry.items() if k != "enforcementLevel"}
        try:
            settings[name] = RuleSetting(Level(entry["enforcementLevel"]), params)
        except (KeyError, ValueError) as exc:
            raise EnforcementError(
                f"{path}: rule {name} needs enforcementLevel advisory, mandatory or disabled"
            ) from exc
    return settings
