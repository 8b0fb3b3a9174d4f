"""RDS Proxy between the flag function and PostgreSQL, when an environment's `function.rdsProxy` is on."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.config import PROXY_MAX_CONNECTIONS_PERCENT
from stacks.constructs.network import DATABASE_PORT, ISOLATED


class FlagDatabaseProxy(Construct):
    """The proxy, its security group and rules; `endpoint` is what the function's DB_HOST names instead.

    The function and the proxy both read the database's own secret (RDS-managed, rotated by RDS): the
    function takes the password from it and connects to the proxy's endpoint; the proxy signs in to the
    database with it. Its pool is capped at PROXY_MAX_CONNECTIONS_PERCENT of max_connections
    (stacks/config.py checks it), and the function gets DB_PREPARED_STATEMENTS=false (flag_function.py):
    prepared statements would pin proxy sessions and undo the multiplexing.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        instance_identifier: str,
        instance_endpoint_address: str,
        engine: rds.IInstanceEngine,
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
            proxy_target=rds.ProxyTarget.from_instance(
                self._target(instance_identifier, instance_endpoint_address, engine, database_security_group_id)
            ),
            secrets=[database_secret],
            vpc=vpc,
            vpc_subnets=ISOLATED,
            security_groups=[self.security_group],
            require_tls=True,
            iam_auth=False,
            max_connections_percent=PROXY_MAX_CONNECTIONS_PERCENT,
        )
        self.endpoint = self.proxy.endpoint

    def _target(
        self, identifier: str, endpoint_address: str, engine: rds.IInstanceEngine, database_security_group_id: str
    ) -> rds.IDatabaseInstance:
        """The instance seen from this stack, with its security group immutable.

        ProxyTarget opens the database's group to the proxy by itself; on the stateful stack's own group
        that rule would land in the stateful stack and point back here (a cycle). The rule is declared
        above instead, in this stack.
        """
        return rds.DatabaseInstance.from_database_instance_attributes(
            self,
            "Target",
            instance_identifier=identifier,
            instance_endpoint_address=endpoint_address,
            port=DATABASE_PORT,
            engine=engine,
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
