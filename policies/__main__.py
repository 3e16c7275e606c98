"""The policy pack's entry point, run by the Pulumi CLI:

    pulumi preview -s dev --policy-pack policies --policy-pack-config policies/enforcement/dev.json

Constructing a PolicyPack starts its gRPC server and blocks, so nothing else may build it.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.crossguard import to_policy
from policies.rules import ALL_RULES

PolicyPack(
    name="mlops-blueprint",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[to_policy(rule) for rule in ALL_RULES],
)
