"""Network: a VPC with private subnets across zones, NAT, VPC endpoints and flow logs."""

from __future__ import annotations

import ipaddress

import pulumi
import pulumi_aws as aws

from infra.context import StackContext, child, service_role

INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "sagemaker.api", "sagemaker.runtime", "logs", "sts", "ssm")


def subnet_cidrs(cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Private subnets take the first /20s, public ones (NAT only) small /24s at the end of the range."""
    network = ipaddress.ip_network(cidr)
    private = [str(s) for s in list(network.subnets(new_prefix=20))[:zones]]
    public = [str(s) for s in list(network.subnets(new_prefix=24))[-zones:]]
    return private, public


class Network(pulumi.ComponentResource):
    vpc: aws.ec2.Vpc
    private_subnet_ids: list[pulumi.Output[str]]
    private_route_table_ids: list[pulumi.Output[str]]
    endpoint_security_group: aws.ec2.SecurityGroup

    def __init__(
        self, ctx: StackContext, key_arn: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:platform:Network", ctx.name("network"), None, opts)
        cfg = ctx.config.network
        zones = cfg.availability_zones
        private_cidrs, public_cidrs = subnet_cidrs(cfg.cidr, len(zones))

        self.vpc = aws.ec2.Vpc(
            ctx.name("vpc"),
            cidr_block=cfg.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=ctx.tags(Name=ctx.name("vpc")),
            opts=child(self),
        )
        igw = aws.ec2.InternetGateway(
            ctx.name("igw"), vpc_id=self.vpc.id, tags=ctx.tags(Name=ctx.name("igw")), opts=child(self)
        )
        public_rt = aws.ec2.RouteTable(
            ctx.name("public-rt"),
            vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags=ctx.tags(Name=ctx.name("public-rt")),
            opts=child(self),
        )
        public_subnets = []
        for index, (zone, block) in enumerate(zip(zones, public_cidrs, strict=True)):
            subnet = aws.ec2.Subnet(
                ctx.name(f"public-{index}"),
                vpc_id=self.vpc.id,
                cidr_block=block,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags=ctx.tags(Name=ctx.name(f"public-{index}"), tier="public"),
                opts=child(self),
            )
            aws.ec2.RouteTableAssociation(
                ctx.name(f"public-{index}-rta"),
                subnet_id=subnet.id,
                route_table_id=public_rt.id,
                opts=child(self),
            )
            public_subnets.append(subnet)

        nat_count = len(zones) if cfg.nat_gateways == "per_az" else 1
        nats = []
        for index in range(nat_count):
            eip = aws.ec2.Eip(
                ctx.name(f"nat-{index}-eip"),
                domain="vpc",
                tags=ctx.tags(Name=ctx.name(f"nat-{index}")),
                opts=child(self),
            )
            nats.append(
                aws.ec2.NatGateway(
                    ctx.name(f"nat-{index}"),
                    allocation_id=eip.id,
                    subnet_id=public_subnets[index].id,
                    tags=ctx.tags(Name=ctx.name(f"nat-{index}")),
                    opts=child(self, depends_on=[igw]),
                )
            )

        self.private_subnet_ids, self.private_route_table_ids = [], []
        for index, (zone, block) in enumerate(zip(zones, private_cidrs, strict=True)):
            subnet = aws.ec2.Subnet(
                ctx.name(f"private-{index}"),
                vpc_id=self.vpc.id,
                cidr_block=block,
                availability_zone=zone,
                tags=ctx.tags(Name=ctx.name(f"private-{index}"), tier="private"),
                opts=child(self),
            )
            route_table = aws.ec2.RouteTable(
                ctx.name(f"private-{index}-rt"),
                vpc_id=self.vpc.id,
                routes=[
                    aws.ec2.RouteTableRouteArgs(
                        cidr_block="0.0.0.0/0", nat_gateway_id=nats[index % nat_count].id
                    )
                ],
                tags=ctx.tags(Name=ctx.name(f"private-{index}-rt")),
                opts=child(self),
            )
            aws.ec2.RouteTableAssociation(
                ctx.name(f"private-{index}-rta"),
                subnet_id=subnet.id,
                route_table_id=route_table.id,
                opts=child(self),
            )
            self.private_subnet_ids.append(subnet.id)
            self.private_route_table_ids.append(route_table.id)

        aws.ec2.VpcEndpoint(
            ctx.name("s3-endpoint"),
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{ctx.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=self.private_route_table_ids,
            tags=ctx.tags(Name=ctx.name("s3-endpoint")),
            opts=child(self),
        )
        self.endpoint_security_group = aws.ec2.SecurityGroup(
            ctx.name("endpoints-sg"),
            description="HTTPS from inside the VPC to the interface endpoints",
            vpc_id=self.vpc.id,
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr_blocks=[cfg.cidr],
                    description="HTTPS from the VPC",
                )
            ],
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr_blocks=[cfg.cidr],
                    description="HTTPS inside the VPC",
                )
            ],
            tags=ctx.tags(Name=ctx.name("endpoints-sg")),
            opts=child(self),
        )
        for service in INTERFACE_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                ctx.name(f"{service.replace('.', '-')}-endpoint"),
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{ctx.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=self.private_subnet_ids,
                security_group_ids=[self.endpoint_security_group.id],
                tags=ctx.tags(Name=ctx.name(f"{service}-endpoint")),
                opts=child(self),
            )
        self._flow_logs(ctx, key_arn)
        self.register_outputs({"vpc_id": self.vpc.id})

    def _flow_logs(self, ctx: StackContext, key_arn: pulumi.Input[str]) -> None:
        group = aws.cloudwatch.LogGroup(
            ctx.name("flow-logs"),
            name=f"/mlops/{ctx.env}/vpc-flow-logs",
            retention_in_days=ctx.config.network.flow_log_retention_days,
            kms_key_id=key_arn,
            tags=ctx.tags(),
            opts=child(self),
        )
        role = service_role(
            ctx,
            self,
            "flow-logs",
            "vpc-flow-logs.amazonaws.com",
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                "Resource": [group.arn, pulumi.Output.concat(group.arn, ":*")],
            },
        )
        aws.ec2.FlowLog(
            ctx.name("flow-log"),
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination=group.arn,
            log_destination_type="cloud-watch-logs",
            iam_role_arn=role.arn,
            tags=ctx.tags(),
            opts=child(self),
        )
