"""Plans of every environment, run once per test session under Pulumi's mocks."""

from __future__ import annotations

from infra.config import parse_stack_config
from infra.offline import Plan, read_stack_config, run_offline
from mlops.paths import PACKAGE_ROOT
from tests.conftest import CLOUD_ENVIRONMENTS

ENVIRONMENTS = CLOUD_ENVIRONMENTS
ENV_DIR = PACKAGE_ROOT / "environments"


def plan_with(env: str, **changes: dict[str, object]) -> Plan:
    """The plan of `env` with parts of its config replaced (to prove the checks catch breakage)."""
    config, region = read_stack_config(ENV_DIR, env)
    payload = config.model_dump()
    for section, values in changes.items():
        payload[section] = {**payload[section], **values}
    return run_offline(parse_stack_config(payload, f"environments/Pulumi.{env}.yaml"), region)
