"""Offline fidelity checks: the plan held against sources AWS and the charts themselves obey.

Pulumi's mocks accept any input. These checks read what a real deployment is judged by instead:
botocore's service models (`api_models`), IAM's service reference (`iam`), the charts' published
versions and value schemas (`helm`), dated support calendars (`calendar`), and where each release
step runs against what it must reach (`reachability`).
"""

from infra.fidelity.findings import CheckReport, Finding

__all__ = ["CheckReport", "Finding"]
