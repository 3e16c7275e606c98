"""The orchestrator: Prefect on EKS.

A private EKS cluster (secrets encrypted with the environment's key, every control-plane log type)
with a CPU node group and an optional GPU node group (tainted, with NVIDIA's device plugin); Prefect
installed with Helm (pulumi-kubernetes `helm.v3.Release`): a self-hosted server on Postgres (RDS,
encrypted, multi-AZ by config, credentials managed in Secrets Manager by RDS) plus a worker, or only
a worker against Prefect Cloud (its API key in Secrets Manager). The worker's service account
assumes, through IRSA, a role that reaches the lake, the registry and Batch, and nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.charts import chart_pins, prefect_image_tag
from infra.context import StackContext, child, managed_role, policy_document

SERVING_DASHBOARD = Path(__file__).resolve().parents[1] / "dashboards" / "serving.json"

CONTROL_PLANE_LOGS = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
DATABASE_SECRET = "prefect-database"
NAMESPACE = "prefect"
WORKER_SERVICE_ACCOUNT = "prefect-worker"


def work_pool_name(env: str) -> str:
    return f"{env}-kubernetes"


def server_api_url() -> str:
    return f"http://prefect-server.{NAMESPACE}.svc.cluster.local:4200/api"


def _kubeconfig(name: str, endpoint: str | None, certificate: Any, region: str) -> str:
    authority = (certificate or {}).get("data", "") if isinstance(certificate, dict) else ""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": name,
                    "cluster": {
                        "server": endpoint or "https://unknown",
                        "certificate-authority-data": authority,
                    },
                }
            ],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
            "users": [
                {
                    "name": name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", name, "--region", region],
                        }
                    },
                }
            ],
        }
    )


def _issuer(identities: Any, ctx: StackContext) -> str:
    """The cluster's OIDC issuer URL (a placeholder until the cluster exists, as under the offline plan)."""
    try:
        return str(identities[0]["oidcs"][0]["issuer"])
    except (TypeError, KeyError, IndexError):
        return f"https://oidc.eks.{ctx.region}.amazonaws.com/id/{ctx.env}"


class Orchestrator(pulumi.ComponentResource):
    cluster: aws.eks.Cluster
    work_pool: str
    api_url: str | None
    flow_role: aws.iam.Role

    def __init__(
        self,
        ctx: StackContext,
        key_arn: pulumi.Input[str],
        subnet_ids: list[pulumi.Output[str]],
        vpc_id: pulumi.Input[str],
        flow_permissions: list[dict[str, Any]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:platform:Orchestrator", ctx.name("orchestrator"), None, opts)
        cfg = ctx.config.orchestrator
        self.work_pool = work_pool_name(ctx.env)

        cluster_role = managed_role(
            ctx, self, "eks-cluster", "eks.amazonaws.com", "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
        )
        self.cluster = aws.eks.Cluster(
            ctx.name("eks"),
            name=ctx.name("eks"),
            version=cfg.kubernetes_version,
            role_arn=cluster_role.arn,
            # Nodes reach the API privately. The Kubernetes provider and the Helm releases run where
            # `pulumi up` runs (a GitHub-hosted runner, outside the VPC), so the public endpoint is on,
            # restricted to the listed CIDRs plus the release runner's own address for that run.
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=bool(cfg.public_access_cidrs()),
                public_access_cidrs=cfg.public_access_cidrs() or None,
            ),
            # The identity that creates the cluster (the release workflow's role) administers it.
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=True
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                resources=["secrets"], provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key_arn)
            ),
            enabled_cluster_log_types=CONTROL_PLANE_LOGS,
            tags=ctx.tags(),
            opts=child(self),
        )

        node_role = managed_role(
            ctx,
            self,
            "eks-node",
            "ec2.amazonaws.com",
            *(
                f"arn:aws:iam::aws:policy/{name}"
                for name in (
                    "AmazonEKSWorkerNodePolicy",
                    "AmazonEC2ContainerRegistryReadOnly",
                    "AmazonEKS_CNI_Policy",
                )
            ),
        )

        def node_group(purpose: str, nodes: Any, gpu: bool) -> aws.eks.NodeGroup:
            return aws.eks.NodeGroup(
                ctx.name(f"eks-{purpose}-nodes"),
                cluster_name=self.cluster.name,
                node_role_arn=node_role.arn,
                subnet_ids=subnet_ids,
                instance_types=list(nodes.instance_types),
                ami_type="AL2023_x86_64_NVIDIA" if gpu else "AL2023_x86_64_STANDARD",
                scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                    min_size=nodes.min_size, max_size=nodes.max_size, desired_size=nodes.desired_size
                ),
                labels={"mlops/accelerator": "gpu" if gpu else "cpu"},
                taints=[aws.eks.NodeGroupTaintArgs(key="nvidia.com/gpu", value="true", effect="NO_SCHEDULE")]
                if gpu
                else None,
                tags=ctx.tags(accelerator="gpu" if gpu else "cpu"),
                opts=child(self),
            )

        node_group("cpu", cfg.cpu_nodes, gpu=False)
        gpu_nodes = node_group("gpu", cfg.gpu_nodes, gpu=True) if cfg.gpu_nodes else None

        # IRSA: the worker's service account assumes the flow role through the cluster's OIDC issuer.
        issuer = self.cluster.identities.apply(lambda ids: _issuer(ids, ctx))
        oidc = aws.iam.OpenIdConnectProvider(
            ctx.name("eks-oidc"),
            url=issuer,
            client_id_lists=["sts.amazonaws.com"],
            thumbprint_lists=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"],
            tags=ctx.tags(),
            opts=child(self),
        )
        host = issuer.apply(lambda url: url.removeprefix("https://"))
        self.flow_role = aws.iam.Role(
            ctx.name("flows-role"),
            assume_role_policy=policy_document(
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": oidc.arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            pulumi.Output.concat(
                                host, ":sub"
                            ): f"system:serviceaccount:{NAMESPACE}:{WORKER_SERVICE_ACCOUNT}",
                            pulumi.Output.concat(host, ":aud"): "sts.amazonaws.com",
                        }
                    },
                }
            ),
            tags=ctx.tags(),
            opts=child(self),
        )
        aws.iam.RolePolicy(
            ctx.name("flows-policy"),
            role=self.flow_role.id,
            policy=policy_document(*flow_permissions),
            opts=child(self),
        )

        provider = k8s.Provider(
            ctx.name("k8s"),
            kubeconfig=pulumi.Output.all(
                self.cluster.name, self.cluster.endpoint, self.cluster.certificate_authority
            ).apply(lambda v: _kubeconfig(v[0] or ctx.name("eks"), v[1], v[2], ctx.region)),
            opts=child(self),
        )
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=provider)
        namespace = k8s.core.v1.Namespace(ctx.name("prefect-ns"), metadata={"name": NAMESPACE}, opts=k8s_opts)
        helm_opts = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[namespace])

        self.api_url: str | None = None
        image = {"prefectTag": prefect_image_tag()}
        if cfg.mode == "self-hosted":
            self.api_url = server_api_url()
            database = self._database(ctx, key_arn, subnet_ids, vpc_id)
            # The chart writes Secret `prefect-database` (key `connection-string`) from these values;
            # the password is a Pulumi secret, so it is encrypted in the state and in the plan output.
            helm_release(
                ctx,
                "prefect-server",
                NAMESPACE,
                {
                    "server": {"uiConfig": {"prefectUiApiUrl": self.api_url}, "image": image},
                    "postgresql": {"enabled": False},
                    "secret": {
                        "create": True,
                        "name": DATABASE_SECRET,
                        "username": database.username,
                        "password": database.password,
                        "host": database.address,
                        "port": "5432",
                        "database": database.db_name,
                    },
                },
                helm_opts,
            )
        else:
            aws.secretsmanager.Secret(
                ctx.name("prefect-cloud-api-key"),
                name=f"mlops/{ctx.env}/prefect-cloud-api-key",
                description="Prefect Cloud API key for this environment's workers (value set out of band)",
                kms_key_id=key_arn,
                tags=ctx.tags(),
                opts=child(self),
            )

        worker_api = (
            {"apiConfig": "selfHostedServer", "selfHostedServerApiConfig": {"apiUrl": self.api_url}}
            if self.api_url
            else {"apiConfig": "cloud"}
        )
        helm_release(
            ctx,
            "prefect-worker",
            NAMESPACE,
            {
                "worker": {
                    **worker_api,
                    "image": image,
                    "config": {"workPool": self.work_pool, "type": "kubernetes"},
                },
                "serviceAccount": {
                    "create": True,
                    "name": WORKER_SERVICE_ACCOUNT,
                    "annotations": {"eks.amazonaws.com/role-arn": self.flow_role.arn},
                },
            },
            helm_opts,
        )
        if gpu_nodes is not None:
            helm_release(
                ctx,
                "nvidia-device-plugin",
                "kube-system",
                {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
                pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[gpu_nodes]),
            )
        if cfg.monitoring_stack:
            stack = helm_release(
                ctx,
                "kube-prometheus-stack",
                "monitoring",
                {"grafana": {"enabled": True}},
                pulumi.ResourceOptions(parent=self, provider=provider),
                logical="monitoring-stack",
            )
            # The chart's Grafana loads every ConfigMap labelled grafana_dashboard (its sidecar).
            k8s.core.v1.ConfigMap(
                ctx.name("serving-dashboard"),
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name="mlops-serving-dashboard", namespace="monitoring", labels={"grafana_dashboard": "1"}
                ),
                data={"mlops-serving.json": SERVING_DASHBOARD.read_text()},
                opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[stack]),
            )
        self.register_outputs({"cluster": self.cluster.name, "work_pool": self.work_pool})

    def _database(
        self,
        ctx: StackContext,
        key_arn: pulumi.Input[str],
        subnet_ids: list[pulumi.Output[str]],
        vpc_id: pulumi.Input[str],
    ) -> aws.rds.Instance:
        cfg = ctx.config.orchestrator
        # Not RDS-managed: RDS rotates a managed password every 7 days, and the copy the server reads
        # in the cluster would go stale. URL-safe characters only: it goes into a connection string.
        password = random.RandomPassword(
            ctx.name("prefect-db-password"), length=40, special=False, opts=child(self)
        )
        subnets = aws.rds.SubnetGroup(
            ctx.name("prefect-db-subnets"), subnet_ids=subnet_ids, tags=ctx.tags(), opts=child(self)
        )
        security_group = aws.ec2.SecurityGroup(
            ctx.name("prefect-db-sg"),
            description="Postgres from inside the VPC only",
            vpc_id=vpc_id,
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp",
                    from_port=5432,
                    to_port=5432,
                    cidr_blocks=[ctx.config.network.cidr],
                    description="Postgres from the VPC",
                )
            ],
            tags=ctx.tags(),
            opts=child(self),
        )
        return aws.rds.Instance(
            ctx.name("prefect-db"),
            identifier=ctx.name("prefect-db"),
            engine="postgres",
            engine_version="16",
            instance_class=cfg.db_instance_class,
            allocated_storage=20,
            db_name="prefect",
            username="prefect",
            password=password.result,
            storage_encrypted=True,
            kms_key_id=key_arn,
            publicly_accessible=False,
            multi_az=cfg.db_multi_az,
            backup_retention_period=cfg.db_backup_days,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[security_group.id],
            deletion_protection=ctx.env == "prod",
            skip_final_snapshot=ctx.env != "prod",
            final_snapshot_identifier=ctx.name("prefect-db-final") if ctx.env == "prod" else None,
            tags=ctx.tags(),
            opts=child(self),
        )


def helm_release(
    ctx: StackContext,
    chart: str,
    namespace: str,
    values: dict[str, Any],
    opts: pulumi.ResourceOptions,
    logical: str | None = None,
) -> k8s.helm.v3.Release:
    """A Helm release of `chart` at its pinned version and repository (`infra/facts/helm_charts.yaml`)."""
    pin = chart_pins()[chart]
    return k8s.helm.v3.Release(
        ctx.name(logical or chart),
        name=chart,
        namespace=namespace,
        create_namespace=namespace not in ("kube-system", NAMESPACE),
        chart=chart,
        version=pin.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=pin.repository),
        values=values,
        opts=opts,
    )
