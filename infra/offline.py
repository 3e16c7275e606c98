"""The offline plan: run the real program under Pulumi's mocks and record every resource.

No Pulumi CLI and no cloud account: the mocks answer every resource registration with its own
inputs (plus a synthetic id and ARN), so the inventory shows exactly what `pulumi up` would ask for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.config import CONFIG_KEY, CONFIG_NAMESPACE, StackConfig, StackConfigError, parse_stack_config
from infra.mock_arns import mock_attributes, physical_name

MOCK_ACCOUNT = "123456789012"
# How the engine marks a secret value on the wire (pulumi.runtime.rpc's signature keys).
_SIG_KEY, _SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"


def unwrap_secrets(value: Any) -> Any:
    """Inputs with secret values replaced by the values themselves (the plan is shown to the operator)."""
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return unwrap_secrets(value.get("value"))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


@dataclass(frozen=True)
class PlannedResource:
    type: str
    name: str
    inputs: dict[str, Any]

    @property
    def is_component(self) -> bool:
        return not self.type.startswith(("aws:", "kubernetes:", "random:"))


@dataclass
class Plan:
    environment: str
    resources: list[PlannedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_token: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str) -> PlannedResource:
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources named {name!r} in the {self.environment} plan")
        return found[0]


def stack_file(environments: Path, env: str) -> Path:
    return environments / f"Pulumi.{env}.yaml"


def read_stack_config(environments: Path, env: str) -> tuple[StackConfig, str]:
    """The validated platform config and AWS region of `environments/Pulumi.<env>.yaml`."""
    path = stack_file(environments, env)
    if not path.exists():
        known = sorted(
            p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in environments.glob("Pulumi.*.yaml")
        )
        raise StackConfigError(f"no stack config {path} (known stacks: {', '.join(known)})")
    document = yaml.safe_load(path.read_text()) or {}
    config = document.get("config") or {}
    region = config.get("aws:region")
    if not region:
        raise StackConfigError(f"{path}: missing config key aws:region")
    return parse_stack_config(config.get(f"{CONFIG_NAMESPACE}:{CONFIG_KEY}"), str(path)), str(region)


def run_offline(config: StackConfig, region: str) -> Plan:
    """Run `infra.program.build` under mocks; returns every registered resource and the stack outputs."""
    import pulumi
    from pulumi.runtime import mocks as pulumi_mocks
    from pulumi.runtime.config import set_all_config
    from pulumi.runtime.settings import SETTINGS
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    plan = Plan(environment=config.environment)

    class Recorder(pulumi_mocks.Mocks):
        def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
            plan.resources.append(PlannedResource(args.typ, args.name, unwrap_secrets(dict(args.inputs))))
            state = dict(args.inputs)
            physical = physical_name(args.name, state)
            for attribute, value in mock_attributes(args.typ, args.name, state, region, MOCK_ACCOUNT).items():
                state.setdefault(attribute, value)
            state.setdefault("keyId", f"{args.name}-id")
            if args.typ == "random:index/randomPassword:RandomPassword":
                state["result"] = "offline-plan-password"  # the real one exists only in the stack's state
            state.setdefault("repositoryUrl", f"{MOCK_ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{physical}")
            return f"{args.name}-id", state

        def call(self, args: pulumi_mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
            # A bare dict: this SDK's mock monitor cannot iterate a `None` failure list.
            if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
                return {
                    "accountId": MOCK_ACCOUNT,
                    "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:user/plan",
                    "userId": "plan",
                    "id": MOCK_ACCOUNT,
                }
            return {}

    set_all_config({"aws:region": region})
    pulumi.runtime.set_mocks(Recorder(), project="mlops-blueprint", stack=config.environment, preview=False)
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()

    from infra.program import build

    def program() -> Any:
        platform = build(config)
        contract = getattr(platform, "contract_json", None)
        if contract is None:
            return None
        return contract.apply(lambda text: plan.outputs.__setitem__("platformContract", json.loads(text)))

    _sync_await(run_pulumi_func(lambda: _sync_await(pulumi.Output.from_input(program()).future())))
    return plan


def plan_environment(environments: Path, env: str) -> Plan:
    config, region = read_stack_config(environments, env)
    return run_offline(config, region)
