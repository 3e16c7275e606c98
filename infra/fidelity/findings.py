"""What a fidelity check reports: findings that name the resource and the input, and what it covered."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Finding:
    check: str
    resource: str
    input: str
    message: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.input}: {self.message}"


@dataclass
class CheckReport:
    """One check's verdict on one plan, with how much of the plan it could hold against its source."""

    check: str
    source: str
    findings: list[Finding] = field(default_factory=list)
    resources: int = 0
    checked: int = 0
    not_covered: int = 0

    def add(self, resource: str, input_path: str, message: str) -> None:
        self.findings.append(Finding(self.check, resource, input_path, message))

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        uncovered = f", {self.not_covered} not covered" if self.not_covered else ""
        return (
            f"{self.check}: {len(self.findings)} finding(s); {self.resources} resources, "
            f"{self.checked} values checked{uncovered} (source: {self.source})"
        )
