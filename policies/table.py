"""The README's table of rules, generated from the rules and the enforcement files:
`python -m policies.table` (a test keeps the README in step)."""

from __future__ import annotations

from policies.enforcement import load_enforcement
from policies.rules import ALL_RULES

ENVIRONMENTS = ("dev", "staging", "prod")


def rules_table() -> str:
    levels = {env: load_enforcement(env) for env in ENVIRONMENTS}
    lines = [
        "| rule | what it checks | mirrors | " + " | ".join(ENVIRONMENTS) + " |",
        "|---|---|---|" + "---|" * len(ENVIRONMENTS),
    ]
    for rule in ALL_RULES:
        cells = [f"`{rule.name}`", rule.description.replace("|", "\\|"), rule.mirrors]
        cells += [levels[env][rule.name].level.value for env in ENVIRONMENTS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(rules_table())
