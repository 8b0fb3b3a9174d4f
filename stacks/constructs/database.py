"""The source of truth: an RDS PostgreSQL instance, private, encrypted, backed up."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.config import DatabaseConfig
from stacks.constructs.network import DATABASE_PORT, ISOLATED

DATABASE_NAME = "flags"
MASTER_USERNAME = "flags_admin"


def postgres_engine(version: str) -> rds.IInstanceEngine:
    """The engine for a full version such as "17.9"; a version this CDK release does not know fails synth."""
    constant = getattr(rds.PostgresEngineVersion, "VER_" + version.replace(".", "_"), None)
    if constant is None:
        raise ValueError(f"aws-cdk-lib knows no PostgreSQL {version}; pick one of rds.PostgresEngineVersion")
    return rds.DatabaseInstanceEngine.postgres(version=constant)


class FlagDatabase(Construct):
    """A single PostgreSQL instance in the isolated subnets, reachable only through `security_group`.

    RDS manages the master password itself (ManageMasterUserPassword): it generates it into a Secrets
    Manager secret of its own (`username` and `password`) and rotates it every 7 days, with no rotation
    function and no network path to build. The runtime reads that secret (DB_SECRET_ARN) afresh for each
    new connection, and the address from DB_HOST, DB_PORT, DB_NAME and DB_USER. Minor upgrades are
    deliberate (the version in cdk.json, staging first), TLS is forced, and `max_connections` is explicit
    so the function's reserved concurrency can be checked against it (stacks/config.py). Backups enable
    point-in-time restore.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DatabaseConfig,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        engine = postgres_engine(config.postgres_version)
        keep_data = removal_policy == cdk.RemovalPolicy.RETAIN
        parameters = rds.ParameterGroup(
            self,
            "Parameters",
            engine=engine,
            description="Flag database: TLS only, explicit connection ceiling",
            parameters={"max_connections": str(config.max_connections), "rds.force_ssl": "1"},
        )
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            engine=engine,
            instance_type=ec2.InstanceType(config.instance_type),
            vpc=vpc,
            vpc_subnets=ISOLATED,
            security_groups=[security_group],
            port=DATABASE_PORT,
            database_name=DATABASE_NAME,
            credentials=rds.Credentials.from_generated_secret(MASTER_USERNAME),
            parameter_group=parameters,
            storage_type=rds.StorageType.GP3,
            allocated_storage=config.allocated_storage_gib,
            max_allocated_storage=config.max_allocated_storage_gib,
            storage_encrypted=True,
            publicly_accessible=False,
            multi_az=config.multi_az,
            backup_retention=cdk.Duration.days(config.backup_retention_days),
            delete_automated_backups=not keep_data,
            copy_tags_to_snapshot=True,
            deletion_protection=config.deletion_protection,
            auto_minor_version_upgrade=False,
            removal_policy=removal_policy,
        )
        self.secret = self._let_rds_manage_the_password()
        self.port = DATABASE_PORT
        self._acknowledge(config)

    def _let_rds_manage_the_password(self) -> secretsmanager.ISecret:
        """ManageMasterUserPassword on the instance, in place of the secret the L2 construct generates.

        aws-cdk-lib's DatabaseInstance always generates (or takes) a password, and has no property for
        RDS-managed passwords yet: its secret is removed and the CloudFormation properties overridden.
        RDS deletes its secret with the instance; a retained or snapshotted database keeps its master
        user, whose password can be reset with `modify-db-instance --manage-master-user-password`.
        """
        assert self.instance.node.try_remove_child("Secret"), "the generated secret moved"
        cfn = self.instance.node.default_child
        assert isinstance(cfn, rds.CfnDBInstance)
        cfn.add_property_override("MasterUsername", MASTER_USERNAME)
        cfn.add_property_deletion_override("MasterUserPassword")
        cfn.manage_master_user_password = True
        return secretsmanager.Secret.from_secret_complete_arn(
            self, "ManagedSecret", cfn.attr_master_user_secret_secret_arn
        )

    @property
    def endpoint_address(self) -> str:
        return self.instance.db_instance_endpoint_address

    def _acknowledge(self, config: DatabaseConfig) -> None:
        acknowledge = cdk.Validations.of(self.instance).acknowledge
        acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-RDS11",
                reason="Default port 5432 on purpose: only the function security groups may reach it; a "
                "non-default port adds no protection inside an isolated VPC.",
            )
        )
        if not config.multi_az:
            acknowledge(
                cdk.Acknowledgment(
                    id="AwsSolutions-RDS3",
                    reason="Single-AZ outside prod to halve the cost; prod is Multi-AZ. Backups and "
                    "point-in-time restore cover an AZ loss in dev and staging.",
                )
            )
        if not config.deletion_protection:
            acknowledge(
                cdk.Acknowledgment(
                    id="AwsSolutions-RDS10",
                    reason="Dev and staging are torn down with their stacks; prod has deletion protection "
                    "and a RETAIN removal policy.",
                )
            )
