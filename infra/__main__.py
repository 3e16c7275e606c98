"""Pulumi entry point (`main: infra/` in Pulumi.yaml): `pulumi up -s dev|staging|prod`."""

from infra.program import build_from_pulumi_config

build_from_pulumi_config()
