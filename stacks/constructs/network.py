"""The private network: a VPC with no route to the internet, and who may talk to whom inside it."""

from __future__ import annotations

import functools

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

CACHE_PORT = 6379
DATABASE_PORT = 5432
HTTPS_PORT = 443
AZ_COUNT = 2  # one isolated subnet per AZ
ISOLATED = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)


class Network(Construct):
    """VPC over two AZs with isolated subnets only: no NAT gateway, no internet gateway, flow logs on.

    The functions reach AWS APIs through interface endpoints (Secrets Manager; Lambda, to invoke the push
    channel's publisher; every key here is AWS-managed, so no KMS endpoint). Reachability is declared in
    one place, security group to security group: functions -> cache 6379, functions and migrations ->
    database 5432, and both -> the endpoints on 443. Only the endpoints accept the VPC's range, on HTTPS.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cidr: str,
        endpoint_az_count: int,
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            max_azs=AZ_COUNT,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24)
            ],
            restrict_default_security_group=True,
        )
        self.flow_log_group = logs.LogGroup(self, "FlowLogs", retention=log_retention, removal_policy=removal_policy)
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        self.endpoint_security_group = self._security_group("Endpoints", "Interface endpoints: HTTPS from the VPC")
        # The literal range (not the VPC's CidrBlock attribute) lets cdk-nag's EC23 check the rule.
        self.endpoint_security_group.add_ingress_rule(
            ec2.Peer.ipv4(cidr), ec2.Port.tcp(HTTPS_PORT), "HTTPS to AWS APIs from inside the VPC"
        )
        endpoint = functools.partial(self._interface_endpoint, endpoint_az_count=endpoint_az_count)
        self.secrets_manager_endpoint = endpoint("SecretsManager", ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER)
        # The flag function invokes the push channel's publisher (outside the VPC) through Lambda's API.
        self.lambda_endpoint = endpoint("Lambda", ec2.InterfaceVpcEndpointAwsService.LAMBDA_)
        self._declare_reachability()

    def _interface_endpoint(
        self, name: str, service: ec2.InterfaceVpcEndpointAwsService, *, endpoint_az_count: int
    ) -> ec2.InterfaceVpcEndpoint:
        """An AWS API reachable from the isolated subnets: HTTPS from the endpoint security group only."""
        return self.vpc.add_interface_endpoint(
            name,
            service=service,
            subnets=ec2.SubnetSelection(subnets=self.vpc.isolated_subnets[:endpoint_az_count]),
            security_groups=[self.endpoint_security_group],
            open=False,
            private_dns_enabled=True,
        )

    def _declare_reachability(self) -> None:
        self.function_security_group = self._security_group("Function", "Flag function: cache, database, AWS APIs")
        self.migration_security_group = self._security_group("Migration", "Migration function: database, AWS APIs")
        self.cache_security_group = self._security_group("Cache", "ElastiCache: the flag function only")
        self.database_security_group = self._security_group("Database", "RDS: the flag and migration functions")
        self._allow(self.function_security_group, self.cache_security_group, CACHE_PORT, "Redis/Valkey over TLS")
        for client in (self.function_security_group, self.migration_security_group):
            self._allow(client, self.database_security_group, DATABASE_PORT, "PostgreSQL over TLS")
            client.add_egress_rule(self.endpoint_security_group, ec2.Port.tcp(HTTPS_PORT), "AWS APIs via endpoints")

    def _security_group(self, name: str, description: str) -> ec2.SecurityGroup:
        return ec2.SecurityGroup(
            self, f"{name}SecurityGroup", vpc=self.vpc, description=description, allow_all_outbound=False
        )

    @staticmethod
    def _allow(client: ec2.SecurityGroup, server: ec2.SecurityGroup, port: int, description: str) -> None:
        """Ingress on the server and egress on the client, each naming the other's security group."""
        server.add_ingress_rule(client, ec2.Port.tcp(port), description)
        client.add_egress_rule(server, ec2.Port.tcp(port), description)
