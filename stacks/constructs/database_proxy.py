"""RDS Proxy between the flag function and PostgreSQL, when an environment's `function.rdsProxy` is on."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.config import PROXY_MAX_CONNECTIONS_PERCENT
from stacks.constructs.network import DATABASE_PORT, ISOLATED


class FlagDatabaseProxy(Construct):
    """The proxy, its security group and rules, and `client_secret`: what the function reads instead.

    The runtime connects to the `host` of the secret named by DB_SECRET_ARN. To point it at the proxy
    without a new setting, `client_secret` is the database secret's JSON with the proxy endpoint as host:
    CloudFormation fills username, password and dbname from the database secret (dynamic references), so
    no credential appears in the template. The proxy authenticates to the database with the original.
    Its pool is capped at PROXY_MAX_CONNECTIONS_PERCENT of max_connections (stacks/config.py checks it),
    and the function gets DB_PREPARED_STATEMENTS=false (flag_function.py): prepared statements would pin
    proxy sessions and undo the multiplexing.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        instance: rds.DatabaseInstance,
        database_secret: secretsmanager.ISecret,
        database_security_group_id: str,
        client_security_group: ec2.ISecurityGroup,
        vpc: ec2.IVpc,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="RDS Proxy: flag function to database", allow_all_outbound=False
        )
        port = ec2.Port.tcp(DATABASE_PORT)
        self.security_group.add_egress_rule(
            ec2.Peer.security_group_id(database_security_group_id), port, "PostgreSQL over TLS"
        )
        # Rules on the stateful stack's groups are declared here, so references only run service -> stateful.
        self._rule(
            "ProxyFromFunction",
            ingress_on=self.security_group.security_group_id,
            peer=client_security_group.security_group_id,
        )
        self._rule(
            "DatabaseFromProxy", ingress_on=database_security_group_id, peer=self.security_group.security_group_id
        )
        ec2.CfnSecurityGroupEgress(
            self,
            "FunctionToProxy",
            group_id=client_security_group.security_group_id,
            destination_security_group_id=self.security_group.security_group_id,
            ip_protocol="tcp",
            from_port=DATABASE_PORT,
            to_port=DATABASE_PORT,
            description="PostgreSQL over TLS through RDS Proxy",
        )
        self.proxy = rds.DatabaseProxy(
            self,
            "Proxy",
            proxy_target=rds.ProxyTarget.from_instance(self._target(instance, database_security_group_id)),
            secrets=[database_secret],
            vpc=vpc,
            vpc_subnets=ISOLATED,
            security_groups=[self.security_group],
            require_tls=True,
            iam_auth=False,
            max_connections_percent=PROXY_MAX_CONNECTIONS_PERCENT,
        )
        self.client_secret = self._client_secret(database_secret)

    def _target(self, instance: rds.DatabaseInstance, database_security_group_id: str) -> rds.IDatabaseInstance:
        """The instance seen from this stack, with its security group immutable.

        ProxyTarget opens the database's group to the proxy by itself; on the stateful stack's own group
        that rule would land in the stateful stack and point back here (a cycle). The rule is declared
        above instead, in this stack.
        """
        assert instance.engine is not None
        return rds.DatabaseInstance.from_database_instance_attributes(
            self,
            "Target",
            instance_identifier=instance.instance_identifier,
            instance_endpoint_address=instance.db_instance_endpoint_address,
            port=DATABASE_PORT,
            engine=instance.engine,
            security_groups=[
                ec2.SecurityGroup.from_security_group_id(
                    self, "DatabaseSecurityGroup", database_security_group_id, mutable=False
                )
            ],
        )

    def _rule(self, construct_id: str, *, ingress_on: str, peer: str) -> None:
        ec2.CfnSecurityGroupIngress(
            self,
            construct_id,
            group_id=ingress_on,
            source_security_group_id=peer,
            ip_protocol="tcp",
            from_port=DATABASE_PORT,
            to_port=DATABASE_PORT,
            description="PostgreSQL over TLS through RDS Proxy",
        )

    def _client_secret(self, database_secret: secretsmanager.ISecret) -> secretsmanager.Secret:
        def copied(field: str) -> cdk.SecretValue:
            return cdk.SecretValue.secrets_manager(database_secret.secret_arn, json_field=field)

        secret = secretsmanager.Secret(
            self,
            "ClientSecret",
            description="Flag database credentials with the RDS Proxy endpoint as host (read by the flag function)",
            secret_object_value={
                "engine": cdk.SecretValue.unsafe_plain_text("postgres"),
                "host": cdk.SecretValue.unsafe_plain_text(self.proxy.endpoint),
                "port": cdk.SecretValue.unsafe_plain_text(str(DATABASE_PORT)),
                "username": copied("username"),
                "password": copied("password"),
                "dbname": copied("dbname"),
            },
            removal_policy=cdk.RemovalPolicy.DESTROY,  # a copy: the database secret is the original
        )
        cdk.Validations.of(secret).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="A copy of the database secret with the proxy as host, filled by CloudFormation; it follows "
                "the original, which is not rotated yet (docs/infrastructure.md), on every deployment.",
            )
        )
        return secret
